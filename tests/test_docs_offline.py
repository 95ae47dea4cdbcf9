"""/docs and /redoc work on a network without internet: every asset the pages load is served by the
service itself (from the fastapi-offline wheel), none from a CDN."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|\burl:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_another_host(client: httpx.Client, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "cdn" not in html.text.lower() and "://" not in html.text and "fonts.googleapis" not in html.text
    references = [a or b for a, b in ASSET.findall(html.text)]
    assert "/openapi.json" in references and len(references) >= 3, references
    for ref in references:
        assert ref.startswith("/") and not ref.startswith("//"), f"{page} loads {ref} from elsewhere"
        answer = client.get(ref)
        assert answer.status_code == 200, ref
        assert len(answer.content) > 1000, ref
    if page == "/docs":
        bundle = client.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        assert b"SwaggerUIBundle" in bundle.content
        # Swagger UI 5 or later: version 4 cannot render the OpenAPI 3.1 document FastAPI serves
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
        (version,) = set(re.findall(rb'PACKAGE_VERSION:"(\d+)\.\d+\.\d+"', bundle.content))
        assert int(version) >= 5
