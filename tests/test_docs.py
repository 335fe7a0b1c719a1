"""The documentation site: it builds with warnings as errors, its code runs, its references exist.

- ``mkdocs build --strict`` succeeds (broken links, anchors and docstring problems are errors), and
  the strict settings of mkdocs.yml really do reject a broken link, anchor and image;
- every ```python block of docs/tutorial.md runs, in order, in one namespace;
- every ``tests/….py::test_name`` and every ``check_eN`` named in docs/*.md exists;
- every ``gan_equiv.…`` / ``maxent_il.…`` name in the "implemented in" column of docs/equations.md
  imports (the equation map points at code that is there);
- every relative link of README.md points at a file of the repository (they are read on GitHub).
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD_TIMEOUT_S = 300

#: `tests/test_x.py`, `tests/test_x.py::test_name` (a trailing * is a glob), or `::test_name`
#: alone, which names a test of the file mentioned last (docs/equations.md and errata.md use it).
TEST_REF = re.compile(
    r"(?P<file>tests/[\w/]+\.py)(?:::(?P<name>test_\w+\*?))?"  # a file, maybe ::test_name
    r"|(?<![\w.])::(?P<cont>test_\w+\*?)"  # ::test_name of the file named last
)
CHECK_REF = re.compile(r"\bcheck_e\d+\b")
FENCE = re.compile(r"^```(?P<lang>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _mkdocs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail('mkdocs is not installed; install the docs extra: pip install -e ".[docs]"')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


def _doc_pages() -> list[Path]:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, f"no Markdown pages in {DOCS}"
    return pages


# --- the site ------------------------------------------------------------------------------------
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = _mkdocs("build", "--strict", "--site-dir", str(site), cwd=ROOT)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    derivations = (site / "derivations" / "index.html").read_text(encoding="utf-8")
    assert derivations.count('class="arithmatex"') > 50  # the equations reach MathJax
    assert "check_e12" in derivations
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("SequenceSpace", "fit_maxent", "soft_bellman", "check_e7", "Trainer"):
        assert name in api, f"{name} missing from the API reference"
    results = (site / "results" / "index.html").read_text(encoding="utf-8")
    assert "<table>" in results and "figures/cost_vs_energy.png" in results
    assert (site / "figures" / "cost_vs_energy.png").is_file()


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ("[gone](missing.md)", "missing.md"),
        ("[here](#no-such-heading)", "no-such-heading"),
        ("[there](other.md#no-such-heading)", "no-such-heading"),
        ("![figure](figures/missing.png)", "missing.png"),
    ],
)
def test_strict_settings_reject_broken_references(tmp_path: Path, page: str, problem: str) -> None:
    """mkdocs.yml's validation settings, inherited by a throw-away site, fail the build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Home\n\n{page}\n", encoding="utf-8")
    (docs / "other.md").write_text("# Other\n\n## A heading\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\nnav:\n  - index.md\n  - other.md\n"
        "plugins:\n  - search\n",
        encoding="utf-8",
    )
    result = _mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"), cwd=tmp_path)
    assert result.returncode != 0, f"a broken reference was accepted:\n{result.stderr}"
    assert problem in result.stderr


# --- the tutorial --------------------------------------------------------------------------------
def test_tutorial_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the tutorial, in order, in one namespace (bash blocks are shown
    only). Temporary folders the tutorial makes land under tmp_path."""
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    fences = [(m["lang"].strip(), m["body"]) for m in FENCE.finditer(text)]
    unknown = sorted({lang for lang, _ in fences} - {"python", "bash"})
    assert not unknown, f"fenced blocks must be python (run) or bash (shown): {unknown}"
    blocks = [body for lang, body in fences if lang == "python"]
    assert len(blocks) >= 8, f"expected the tutorial's python blocks, found {len(blocks)}"
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace: dict[str, object] = {"__name__": "__tutorial__"}
    for i, body in enumerate(blocks):
        exec(compile(body, f"docs/tutorial.md[python block {i + 1}]", "exec"), namespace)
    assert any(tmp_path.rglob("energy_vs_cost.png")), "the tutorial's plot was not written"


# --- references to tests and checks --------------------------------------------------------------
@functools.cache
def _test_functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    )


def test_every_test_reference_in_the_docs_exists() -> None:
    missing: list[str] = []
    n_refs = 0
    for page in _doc_pages():
        last_file: str | None = None
        for match in TEST_REF.finditer(page.read_text(encoding="utf-8")):
            if match["file"]:
                last_file, name = match["file"], match["name"]
            else:
                name = match["cont"]
                if last_file is None:
                    missing.append(f"{page.name}: ::{name} follows no tests/….py")
                    continue
            path = ROOT / last_file
            if not path.is_file():
                missing.append(f"{page.name}: {last_file} does not exist")
                continue
            if name is None:
                continue
            n_refs += 1
            if not fnmatch.filter(sorted(_test_functions(path)), name):
                missing.append(f"{page.name}: {last_file}::{name} names no test function")
    assert n_refs > 50, f"found only {n_refs} test references; has the pattern changed?"
    assert not missing, "\n".join(missing)


def test_every_check_reference_in_the_docs_exists() -> None:
    from gan_equiv.exact.claims import CHECKS

    known = {check.__name__ for check in CHECKS.values()}
    named = {name for page in _doc_pages() for name in CHECK_REF.findall(page.read_text(encoding="utf-8"))}
    assert len(named) >= 12, sorted(named)
    assert named <= known, f"unknown checks named in docs/: {sorted(named - known)}"


QUALIFIED_NAME = re.compile(r"`((?:gan_equiv|maxent_il)(?:\.\w+)+)`")


def _implemented_in_names() -> list[str]:
    """The qualified names written in the "implemented in" column of docs/equations.md's tables."""
    names: list[str] = []
    column: int | None = None
    for line in (DOCS / "equations.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            column = None  # a table ended
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if "implemented in" in cells:
            column = cells.index("implemented in")
        elif column is not None and column < len(cells):
            names += QUALIFIED_NAME.findall(cells[column])
    return names


def _resolve(qualified: str) -> object:
    """Import the longest module prefix of ``a.b.c.name`` and look the rest up as attributes."""
    parts = qualified.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(qualified)


def test_every_implemented_in_name_imports() -> None:
    names = _implemented_in_names()
    assert len(names) >= 30, f"found only {len(names)} names in the 'implemented in' column"
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            missing.append(f"{name}: {err}")
    assert not missing, "\n".join(missing)


def test_readme_relative_links_exist() -> None:
    """README is read on GitHub, where links into docs/ are plain relative paths."""
    targets = [m["target"] for m in LINK.finditer((ROOT / "README.md").read_text(encoding="utf-8"))]
    relative = [t.split("#", 1)[0] for t in targets if "://" not in t and not t.startswith(("#", "mailto:"))]
    assert any(t.startswith("docs/") for t in relative)
    missing = sorted({t for t in relative if not (ROOT / t).exists()})
    assert not missing, f"README links to missing files: {missing}"


def test_api_reference_lists_every_module() -> None:
    """docs/api.md has a ``::: module`` block for every module of both packages (but ``__main__``)."""
    listed = set(re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "api.md").read_text(encoding="utf-8"), re.M))
    modules = set()
    for package in ("maxent_il", "gan_equiv"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name not in ("__init__.py", "__main__.py"):
                modules.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert not modules - listed, f"modules missing from docs/api.md: {sorted(modules - listed)}"
    assert not listed - modules, f"docs/api.md names modules that do not exist: {sorted(listed - modules)}"
