"""The detection pages are what their generators print from the committed results, and nothing else: no
hand-written history or explanation inside a generator (that lives in docs/detection_method.md, which
each generated page links). Regenerating from the committed JSON needs no benchmark run."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_the_in_family_page_is_its_generators_output() -> None:
    from benchmarks import report

    page = report.markdown(json.loads((DOCS / "detection.json").read_text()))
    assert page == (DOCS / "detection_in_family.md").read_text(), "run benchmarks.report.markdown on docs/detection.json"
    assert "](detection_method.md)" in page


def test_the_per_family_page_is_its_generators_output() -> None:
    from benchmarks import families_report

    page = families_report.markdown(json.loads((DOCS / "detection_families.json").read_text()))
    assert page == (DOCS / "detection.md").read_text(), "run families_report.markdown on docs/detection_families.json"
    assert "](detection_method.md)" in page


def test_history_and_explanations_live_in_the_written_page() -> None:
    from benchmarks import families_report, report

    method = (DOCS / "detection_method.md").read_text()
    for moved in ("737d857", "Read a lower median delay together with recall", "### Definitions",
                  "What the service does that the figures rest on"):
        assert moved in method
        for generator in (report, families_report):
            assert moved not in Path(generator.__file__).read_text(), f"{moved!r} is back in {generator.__name__}"
