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


def test_swagger_ui_renders_the_schema_in_a_real_browser_without_internet(service) -> None:  # type: ignore[no-untyped-def]
    """Headless Chromium (Debian's, when installed) runs the page's JavaScript: the operations appear, and
    the Authorize button of the declared security schemes. The test machines have no internet, so a
    page that needed a CDN would render nothing."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          "--virtual-time-budget=15000", f"{service.url}/docs"],
                         capture_output=True, text=True, timeout=120).stdout
    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/v1/users/{user_id}/posts", "/v1/users/{user_id}/posts/base64", "/v1/users/{user_id}/observations",
            "/v1/webhooks/{webhook_id}/rotate-secret"} <= paths, dom[-2000:]
    assert "btn authorize" in dom and "Unable to render" not in dom
