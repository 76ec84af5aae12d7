"""The README and docs/ stay navigable: every relative link and anchor resolves, and the README's
module map names exactly what is in the tree."""
from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest

from tests import markdown_links

ROOT = markdown_links.REPO_ROOT
PAGES = ["README.md", "BENCHMARKS.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
MAPPED_PACKAGES = ("components", "pipeline", "serving")


@pytest.mark.parametrize("page", PAGES)
def test_every_link_of_the_page_resolves(page):
    assert markdown_links.broken_links(os.path.join(ROOT, page)) == []


def test_a_missing_file_or_anchor_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` section: here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#a-code-section-here) [ok](#page) [web](https://example.com/x#y)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere)\n"
        "```\n[in code](nowhere.md)\n```\n"
        "`[inline](nowhere.md)`\n")
    problems = markdown_links.broken_links(str(page))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "missing.md (no such file)", "other.md#nowhere (no such anchor)"]


def test_anchors_follow_github_slugs():
    text = ("# The `cpu` profile on FER2013\n## Production: TF Serving\n"
            "## Notes\n## Notes\n<a id=\"stable-id\"></a>\n```\n# not a heading\n```\n")
    assert markdown_links.anchors(text) == {
        "the-cpu-profile-on-fer2013", "production-tf-serving", "notes", "notes-1", "stable-id"}


def _tracked_text_files() -> list:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    suffixes = (".py", ".sh", ".in", ".md", ".cfg", ".toml", ".ini", ".txt")
    return [p for p in listed.stdout.splitlines()
            if p.endswith(suffixes) or os.path.basename(p) in ("Makefile", "Dockerfile", "run")]


def test_every_citation_of_the_readme_or_a_docs_page_resolves():
    problems = []
    for path in _tracked_text_files():
        full = os.path.join(ROOT, path)
        if os.path.isfile(full):
            with open(full, encoding="utf-8", errors="replace") as f:
                problems += markdown_links.broken_citations(path, f.read())
    assert problems == []


def test_a_citation_of_a_missing_page_or_anchor_is_reported():
    missing_page, missing_anchor = "docs/" + "nowhere.md", "README.md" + "#no-such-section"
    text = ("see docs/serving.md and docs/serving.md#local-server\n"
            f"# ({missing_page}) {missing_anchor} bench/gpu_recipe/README.md\n")
    assert markdown_links.broken_citations("x.py", text) == [
        f"x.py:2: {missing_page} (no such page)", f"x.py:2: {missing_anchor} (no such anchor)"]


def _module_map_rows() -> list:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines()
            if line.startswith("| `")]


def _mapped_paths() -> set:
    """The paths in the module map's first column; `a/b.py`, `c.py` means `a/c.py`."""
    paths = set()
    for row in _module_map_rows():
        folder = ""
        for name in re.findall(r"`([^`]+)`", row.split("|")[1]):
            if "/" in name:
                folder = name if name.endswith("/") else os.path.dirname(name) + "/"
                paths.add(name)
            else:
                paths.add(folder + name)
    return paths


def test_the_module_map_names_only_paths_that_exist():
    paths = _mapped_paths()
    assert len(paths) > 20
    assert sorted(p for p in paths if not os.path.exists(os.path.join(ROOT, p))) == []


def test_the_module_map_names_every_module_and_package():
    paths = _mapped_paths()
    unmapped = []
    for package in MAPPED_PACKAGES:
        for entry in sorted(os.listdir(os.path.join(ROOT, package))):
            full = os.path.join(ROOT, package, entry)
            if os.path.isdir(full) and os.path.exists(os.path.join(full, "__init__.py")):
                name = f"{package}/{entry}/"
            elif (entry.endswith(".py") and not entry.endswith("_test.py")
                  and entry not in ("__init__.py", "conftest.py")):
                name = f"{package}/{entry}"
            else:
                continue
            if name not in paths:
                unmapped.append(name)
    assert unmapped == []
