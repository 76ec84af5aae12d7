"""Links and anchors of the project's Markdown pages, as GitHub renders them: for the tests that
keep README.md, docs/ and the citations of BENCHMARKS.md sections resolving."""
from __future__ import annotations

import os
import re
from typing import Dict, Iterator, List, NamedTuple, Set

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
# [text](target) and ![alt](target); the target ends at whitespace or ')'.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


class Link(NamedTuple):
    line: int
    target: str


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores
    kept), spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def outside_code(text: str) -> Iterator[tuple]:
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(text: str) -> Set[str]:
    """Every anchor a page defines: its headings' slugs (GitHub numbers repeats -1, -2, ...) and
    explicit `<a id="...">` tags."""
    found: Set[str] = set()
    seen: Dict[str, int] = {}
    for _, line in outside_code(text):
        found.update(_HTML_ANCHOR.findall(line))
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> List[Link]:
    """Markdown links outside code blocks and inline code."""
    found = []
    for number, line in outside_code(text):
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            found.append(Link(number, target))
    return found


def broken_links(page_path: str) -> List[str]:
    """'page:line: target (why)' for each relative link of `page_path` whose file or anchor does
    not exist. Web links are not followed."""
    with open(page_path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for link in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link.target):  # https:, mailto:
            continue
        path, _, anchor = link.target.partition("#")
        target_file = (os.path.normpath(os.path.join(os.path.dirname(page_path), path))
                       if path else page_path)
        where = f"{os.path.relpath(page_path, REPO_ROOT)}:{link.line}: {link.target}"
        if not os.path.exists(target_file):
            problems.append(f"{where} (no such file)")
        elif anchor and target_file.endswith(".md"):
            with open(target_file, encoding="utf-8") as f:
                if anchor not in anchors(f.read()):
                    problems.append(f"{where} (no such anchor)")
    return problems


# A page cited in code or prose as text, not as a link: `docs/serving.md`, `README.md#module-map`.
_CITATION = re.compile(r"(?<![\w/.-])((?:docs/[\w.-]+|README)\.md)(?:#([\w-]+))?")


def broken_citations(path: str, text: str) -> List[str]:
    """'path:line: citation (why)' for each citation of README.md or a docs/ page, in `text`,
    whose page or anchor does not exist."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for page, anchor in _CITATION.findall(line):
            target = os.path.join(REPO_ROOT, page)
            cited = page + (f"#{anchor}" if anchor else "")
            if not os.path.exists(target):
                problems.append(f"{path}:{number}: {cited} (no such page)")
            elif anchor:
                with open(target, encoding="utf-8") as f:
                    if anchor not in anchors(f.read()):
                        problems.append(f"{path}:{number}: {cited} (no such anchor)")
    return problems
