"""The README stays a front page and every link between the written pages leads somewhere: each relative
link of README.md, docs/*.md and deploy/README.md names a file that exists and, with ``#anchor``, a heading
of that file (GitHub's anchor rule)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of ``page``'s headings: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", page.read_text())
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", page.read_text())) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_readme_is_a_front_page_that_links_every_written_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 12_000, "the README grew past 12 KB: move the detail to a docs/ page"
    linked = {Path(t.partition("#")[0]).name for t in links(ROOT / "README.md") if t.startswith("docs/")}
    written = {p.name for p in (ROOT / "docs").glob("*.md") if not p.name.endswith("-quick.md")}
    assert written - linked - {"detection_in_family.md", "detection_fast_rules.md", "timelines.md",
                               "share_rule_alone.md", "operating_points.md",
                               "second_change.md", "resolutions.md", "return_test.md", "visibility.md",
                               "alarm_sources.md", "late_changes.md"} == set()
    # those are linked from the pages that explain them
    drift = (ROOT / "docs" / "drift.md").read_text() + (ROOT / "docs" / "storage.md").read_text()
    assert all(name in drift for name in ("detection_in_family.md", "detection_fast_rules.md", "timelines.md"))
    rules = (ROOT / "docs" / "detection_rules.md").read_text()
    assert all(f"({name})" in rules for name in ("share_rule_alone.md", "operating_points.md", "second_change.md",
                                                 "resolutions.md", "return_test.md", "visibility.md",
                                                 "alarm_sources.md"))
