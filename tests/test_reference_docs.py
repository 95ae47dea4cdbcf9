"""docs/settings.md, docs/errors.md and docs/metrics.md are generated from the code (`python -m service.docs all`):
regenerated here and compared, so a setting, an error code or a metric cannot be added without its documentation."""

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


def test_no_route_answers_a_code_outside_the_tree() -> None:
    """Every code is raised as a class of service/errors.py, so errors.md lists it: /readyz's not_ready
    and /healthz's embedded_redis_exited were written as literals into error bodies, and were missing."""
    import re

    codes = {cls.code for cls in docs._error_classes()}
    for path in sorted((ROOT / "service").rglob("*.py")):
        for literal in re.findall(r"error_body\(\s*[\"'](\w+)[\"']", path.read_text()):
            assert literal in codes, f"{path.relative_to(ROOT)} answers {literal}: raise an EmodriftError subclass"
    assert {"not_ready", "embedded_redis_exited"} <= codes


def test_the_readme_links_the_generated_pages_instead_of_copying_them() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/settings.md" in readme and "docs/errors.md" in readme
    assert "| `EMODRIFT_REDIS_TIMEOUT_SECONDS` |" not in readme  # the hand-written table is gone


def test_every_metric_is_listed_with_its_labels_and_buckets() -> None:
    from service import metrics

    page = docs.metrics_markdown()
    collectors = docs._collectors()
    assert len(collectors) >= 20 and ("POSTS", metrics.POSTS) in collectors
    for _, collector in collectors:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{docs._exposed_name(collector)}` |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1].startswith(collector._type)
        for label in collector._labelnames:
            assert f"`{label}`" in cells[2]
        assert cells[4], f"{collector._name}: give it a help text in service/metrics.py"
    # counters are exposed with _total, histograms with their explicit buckets
    assert "| `emodrift_posts_total` | counter | `source`, `outcome` | - |" in page
    assert "| `emodrift_inference_batch_size` | histogram | `provider` | 1, 2, 4, 8, 16, 32, 64, 128, 256 |" in page
    assert "(delivered, retry, failed, gone)" in page  # the label values from the comment beside it


def test_the_readme_links_the_metrics_page() -> None:
    assert "docs/metrics.md" in (ROOT / "README.md").read_text()
