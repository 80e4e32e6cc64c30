"""The README is the two-minute read (what it is, `make demo` / `make test`, where to go next);
everything else lives in the documentation site. Its links must lead somewhere: GitHub renders
them, and `mkdocs build --strict` does not read the README."""

from __future__ import annotations

from urllib.parse import unquote

from finance_assets_tests.test_docs.markdown_links import ROOT, anchors, links

README = ROOT / "README.md"
MAX_LINES = 150


def test_readme_reads_in_two_minutes() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_LINES}): move the detail to a page "
        "under docs/ and link it"
    )


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test", "make dev"):
        assert command in text, f"README.md no longer shows `{command}`"


def test_every_readme_link_resolves() -> None:
    broken = []
    for number, target in links(README):
        if target.startswith(("http://", "https://", "mailto:")):
            continue  # no network in the tests; external links are not checked
        path_part, _, anchor = target.partition("#")
        target_file = (ROOT / unquote(path_part)).resolve() if path_part else README
        if not target_file.is_relative_to(ROOT) or not target_file.exists():
            broken.append(f"README.md:{number}: {target} (no such file)")
        elif anchor and target_file.suffix == ".md" and anchor not in anchors(target_file):
            broken.append(f"README.md:{number}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)
    assert links(README), "the README links to no page: the pattern no longer finds links"
