"""The documentation site builds with warnings as errors, and what the code and the README point to exists.

Code comments refer to the docs by page and heading (``docs/data-model.md#fx-tables``); the built site
is the judge of which headings exist (MkDocs gives each heading its anchor), so a renamed heading
fails here rather than leaving a dead reference.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# where references to the docs live: the package, its tests, the benches and the build files
SOURCES = [*REPO.glob("mkt_pipeline/**/*.py"), *REPO.glob("mkt_pipeline_tests/**/*.py"), *REPO.glob("bench/*.py")]
SOURCES += [REPO / "Makefile", REPO / "docker-compose.yml", REPO / "README.md"]
DOC_REF = re.compile(r"docs/([a-z0-9_/-]+\.md)(?:#([a-z0-9_-]+))?")


def references() -> dict[tuple[str, str | None], list[str]]:
    """{(page, anchor or None): [where]} of every ``docs/<page>.md[#anchor]`` in the sources."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for page, anchor in DOC_REF.findall(line):
                found.setdefault((page, anchor or None), []).append(f"{path.relative_to(REPO)}:{n}")
    return found


SPEC_REF = "SPEC " + "\u00a7"  # spelled apart so this file does not match itself


def test_no_reference_to_the_spec_is_left():
    left = [
        f"{path.relative_to(REPO)}:{n}"
        for path in SOURCES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SPEC_REF in line
    ]
    assert not left, f"a specification outside the repository is referred to at {left}; refer to a docs page"


def test_the_readme_is_short_and_points_into_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    pages = {page for page, _ in DOC_REF.findall(readme)}
    assert {"getting-started.md", "dagster.md", "questdb.md", "faults.md", "data-model.md", "benchmarks.md"} <= pages


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (the docs extra)")
def test_the_site_builds_strictly_and_every_reference_resolves(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    refs = references()
    assert len(refs) >= 20  # the code does refer to the docs
    missing = []
    for (page, anchor), where in sorted(refs.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        source = REPO / "docs" / page
        html = site / page.removesuffix(".md") / "index.html"
        if page == "index.md":
            html = site / "index.html"
        if not source.is_file() or not html.is_file():
            missing.append(f"docs/{page} (from {where[0]})")
        elif anchor and f'id="{anchor}"' not in html.read_text(encoding="utf-8"):
            missing.append(f"docs/{page}#{anchor} (from {where[0]})")
    assert not missing, f"references to docs that do not exist: {missing}"
