"""What the docs tests read in a Markdown file: its links, its headings' anchors (as
Python-Markdown's `toc` extension, which mkdocs uses, makes them) and the paths it names in
code spans. Fenced code blocks are skipped: what is inside them is not Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the target ends at a space (a title) or the parenthesis.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def prose_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of each inline link and image."""
    return [(n, m.group(1)) for n, line in prose_lines(path) for m in _LINK.finditer(line)]


def anchors(path: Path) -> set[str]:
    """The ids the `toc` extension gives the file's headings (`_1`, `_2` for repeats)."""
    seen: set[str] = set()
    for _, line in prose_lines(path):
        match = _HEADING.match(line)
        if not match:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))  # a link's text
        slug = slugify(text.replace("`", "").replace("*", ""), "-")
        unique, count = slug, 0
        while unique in seen:
            count += 1
            unique = f"{slug}_{count}"
        seen.add(unique)
    return seen


def code_spans(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each inline code span."""
    return [(n, m.group(1)) for n, line in prose_lines(path) for m in _CODE_SPAN.finditer(line)]
