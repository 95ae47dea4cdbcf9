"""docs/settings.md and docs/errors.md are generated from the code (`python -m service.docs all`):
regenerated here and compared, so a setting or an error code cannot be added without its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import docs, errors
from service.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("what", sorted(docs.PAGES))
def test_the_committed_page_is_what_the_code_generates(what: str, tmp_path: Path) -> None:
    fresh = docs.write(what, tmp_path).read_text()
    committed = (ROOT / "docs" / docs.PAGES[what][0]).read_text()
    assert committed == fresh, f"docs/{docs.PAGES[what][0]} is stale: run `python -m service.docs {what}`"


def test_every_setting_is_described_and_listed() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not undocumented, f"give these settings a description in service/config.py: {undocumented}"
    page = docs.settings_markdown()
    for name in Settings.model_fields:
        assert f"| `EMODRIFT_{name.upper()}` |" in page


def test_every_error_code_is_explained() -> None:
    page = docs.errors_markdown()
    for cls in docs._error_classes():
        row = next(line for line in page.splitlines() if f"| `{cls.code}` | `{cls.__name__}` |" in line)
        assert row.split("|")[4].strip(), f"{cls.__name__}: add a note after it in service/errors.py's docstring tree"
    assert {cls.code for cls in docs._error_classes()} >= {errors.WebhookDisabled.code, errors.InvalidId.code}


def test_the_readme_links_the_generated_pages_instead_of_copying_them() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/settings.md" in readme and "docs/errors.md" in readme
    assert "| `EMODRIFT_REDIS_TIMEOUT_SECONDS` |" not in readme  # the hand-written table is gone
