"""Code and docs cite BENCHMARKS.md sections by stable anchor (`BENCHMARKS.md#<id>`), not by
title: every cited anchor is defined in BENCHMARKS.md (an explicit `<a id="...">` or a heading's
GitHub slug), and no file cites a section by its quoted title, the old style that broke silently
when a heading was renamed or a section moved. Pure Python: reads the tracked text files.
(Links inside BENCHMARKS.md, and citations of README.md and docs/, are tests/docs_test.py's.)"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, Iterable, List, Mapping, Set

import pytest

from tests import markdown_links

REPO = markdown_links.REPO_ROOT
BENCHMARKS = "BENCHMARKS.md"
# The text files that may cite it; others (images, TFRecords, results) are not read.
TEXT_SUFFIXES = (".py", ".md", ".sh", ".in", ".txt", ".toml", ".cfg", ".ini")
TEXT_NAMES = ("Makefile", "Dockerfile")  # Dockerfile.debootstrap too
# README.md and docs/ (prose) are checked apart from the code (see the last repository test).
PROSE_PAGE, PROSE_FOLDER = "README.md", "docs/"

CITATION = re.compile(r"BENCHMARKS\.md#([A-Za-z0-9_-]+)")
# The old style: the file's name, a comma or an opening parenthesis, maybe the word `section`,
# then a quoted title, possibly on the next line (of a comment too); see the synthetic examples.
TITLE_CITATION = re.compile(
    r'BENCHMARKS\.md`?[\s#]*[,(][\s#]*(?:section\s+)?["\u201c]([^"\u201d]*)')
EXPLICIT_ANCHOR = re.compile(r'<a\s+id="([^"]+)"></a>')


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def missing_anchors(files: Mapping[str, str], anchors: Set[str]) -> List[str]:
    """'path:line: ...' for each `BENCHMARKS.md#<anchor>` in `files` (path -> text) whose anchor
    is not in `anchors` (BENCHMARKS.md's: `markdown_links.anchors`)."""
    problems = []
    for path, text in sorted(files.items()):
        for match in CITATION.finditer(text):
            if match.group(1) not in anchors:
                problems.append(f"{path}:{_line(text, match.start())}: {match.group(0)} is not "
                                f"an anchor of {BENCHMARKS}")
    return problems


def title_citations(files: Mapping[str, str]) -> List[str]:
    """'path:line: ...' for each citation of a BENCHMARKS.md section by quoted title."""
    problems = []
    for path, text in sorted(files.items()):
        for match in TITLE_CITATION.finditer(text):
            title = " ".join(match.group(1).replace("#", " ").split())
            problems.append(f"{path}:{_line(text, match.start())}: cites {BENCHMARKS} by title "
                            f"\"{title}\"; cite {BENCHMARKS}#<anchor> instead")
    return problems


def _is_text(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(TEXT_SUFFIXES) or name.startswith(TEXT_NAMES)


def _repository_paths() -> Iterable[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                                capture_output=True).stdout
        return [p for p in listed.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout: walk the tree
        paths = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("outputs", "data")]
            paths += [os.path.relpath(os.path.join(root, n), REPO) for n in names]
        return paths


def repository_text_files() -> Dict[str, str]:
    """Path (relative to the repository) -> text, for the tracked text files."""
    files = {}
    for path in _repository_paths():
        full = os.path.join(REPO, path)
        if _is_text(path) and os.path.isfile(full):
            with open(full, encoding="utf-8", errors="replace") as f:
                files[path] = f.read()
    return files


def _is_prose(path: str) -> bool:
    return path == PROSE_PAGE or path.startswith(PROSE_FOLDER)


def _report(problems: List[str]) -> str:
    return "\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def files() -> Dict[str, str]:
    return repository_text_files()


@pytest.fixture(scope="module")
def benchmarks(files) -> str:
    return files[BENCHMARKS]


# ------------------------------------------------------------------ the repository


def test_every_cited_benchmarks_anchor_exists(files, benchmarks):
    problems = missing_anchors(files, markdown_links.anchors(benchmarks))
    assert not problems, _report(problems)


def test_benchmarks_explicit_anchors_are_unique_and_short(benchmarks):
    ids = EXPLICIT_ANCHOR.findall(benchmarks)
    assert len(ids) > 20
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert [i for i in ids if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i)] == []


def test_code_cites_benchmarks_sections_by_anchor_not_title(files):
    problems = title_citations({p: t for p, t in files.items() if not _is_prose(p)})
    assert not problems, _report(problems)


def test_readme_and_docs_cite_benchmarks_sections_by_anchor_not_title(files):
    problems = title_citations({p: t for p, t in files.items() if _is_prose(p)})
    assert not problems, _report(problems)


# ------------------------------------------------------------------ the checks themselves

NAME = "BENCHMARKS" + ".md"  # spelt so that this file holds no citation of its own

SYNTHETIC = """# Benchmarks

<a id="kept"></a>
## The console and the report (issue 11, 2026-11-26)

```
# run 2: a comment in a code block, not a heading
```

## `make run` with the ensemble
## `make run` with the ensemble
"""


def test_a_missing_anchor_is_reported_and_a_present_one_is_not():
    anchors = markdown_links.anchors(SYNTHETIC)
    files = {
        "pipeline/x.py": f"a = 1  # {NAME}#kept\n# see {NAME}#gone, and\n"
                         f"# {NAME}#make-run-with-the-ensemble-1\n",
        "docs/" + "y.md": f"[figures](../{NAME}#the-console-and-the-report-issue-11-2026-11-26)\n"
                     f"[all of them]({NAME}), `{NAME}#<id>`\n",
    }
    assert missing_anchors(files, anchors) == [
        f"pipeline/x.py:2: {NAME}#gone is not an anchor of {NAME}"]
    assert missing_anchors({"z.py": f"# {NAME}#run-2-a-comment-in-a-code-block-not-a-heading"},
                           anchors) == [
        f"z.py:1: {NAME}#run-2-a-comment-in-a-code-block-not-a-heading is not an anchor of {NAME}"]


def test_title_citations_are_reported_over_line_breaks():
    files = {
        "a.py": f'x = 1\n# the stock build ({NAME}, "Model variants").\n',
        "b.py": f'# costs more: {NAME},\n#    "Slow clients".\n',
        "c.md": f'Figures in `{NAME}` (section "GPU\nrecipe probe, first runs").\n',
        "d.md": f'line\n\n{NAME} ("Serving") shows it.\n',
        "fine.py": f"# ({NAME}#model-variants), [{NAME}]({NAME}), {NAME}.\n",
    }
    assert title_citations(files) == [
        f'a.py:2: cites {NAME} by title "Model variants"; cite {NAME}#<anchor> instead',
        f'b.py:1: cites {NAME} by title "Slow clients"; cite {NAME}#<anchor> instead',
        f'c.md:1: cites {NAME} by title "GPU recipe probe, first runs"; cite {NAME}#<anchor> '
        f"instead",
        f'd.md:3: cites {NAME} by title "Serving"; cite {NAME}#<anchor> instead',
    ]


def test_removing_a_cited_anchor_from_a_copy_of_benchmarks_fails_the_check(files, benchmarks,
                                                                           tmp_path):
    """The repository check catches a real break: a copy of BENCHMARKS.md without the anchor
    that pipeline/configs.py cites for the `cpu` profile's time budget."""
    anchor = '<a id="training-time-budget"></a>\n'
    assert benchmarks.count(anchor) == 1
    copy = tmp_path / BENCHMARKS
    copy.write_text(benchmarks.replace(anchor, ""), encoding="utf-8")
    before = set(missing_anchors(files, markdown_links.anchors(benchmarks)))
    problems = [p for p in missing_anchors(files, markdown_links.anchors(
        copy.read_text(encoding="utf-8"))) if p not in before]
    assert problems
    assert all(f"{NAME}#training-time-budget is not an anchor" in p for p in problems), problems
    assert any(p.startswith("pipeline/configs.py:") for p in problems), problems
