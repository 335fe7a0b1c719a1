"""The house rules of docs/architecture.md, checked on the source: which wing may import which,
modules that fit on a screen, and every subpackage stating its purpose and exporting its names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WINGS = ("models", "train", "exact", "recsys")
#: What each part of the project must never import (module prefixes), per docs/architecture.md.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "maxent_il": ("gan_equiv", "torch"),
    "gan_equiv.models": ("gan_equiv.train", "gan_equiv.exact", "gan_equiv.recsys", "gan_equiv.cli"),
    "gan_equiv.losses": ("gan_equiv.models", "gan_equiv.train", "gan_equiv.exact", "gan_equiv.recsys"),
    "gan_equiv.checks": ("gan_equiv.models", "gan_equiv.train", "gan_equiv.exact", "gan_equiv.recsys"),
    "gan_equiv.schema": ("gan_equiv.models", "gan_equiv.train", "gan_equiv.exact", "gan_equiv.recsys"),
    "gan_equiv.train": ("gan_equiv.exact", "gan_equiv.recsys", "gan_equiv.cli"),
    "gan_equiv.exact": ("gan_equiv.recsys", "gan_equiv.cli"),
    "gan_equiv.recsys": ("gan_equiv.exact", "gan_equiv.cli"),
}
MAX_LINES = 400


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("maxent_il", "gan_equiv"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    """Every module an import statement in the file names, nested imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from gan_equiv import train` names the wing itself
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _rule_for(module: str) -> tuple[str, ...]:
    matches = [prefix for prefix in FORBIDDEN if module == prefix or module.startswith(prefix + ".")]
    return FORBIDDEN[max(matches, key=len)] if matches else ()


def _hits(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_run_one_way(module: str, path: Path) -> None:
    forbidden = _rule_for(module)
    bad = sorted(n for n in _imports(path) for prefix in forbidden if _hits(n, prefix))
    assert not bad, f"{module} imports {bad}, which docs/architecture.md forbids for it"


def test_the_rule_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The checker is not vacuous: a train module importing the exact wing is caught."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gan_equiv.exact.claims import CHECKS\n", encoding="utf-8")
    forbidden = _rule_for("gan_equiv.train.m")
    assert any(_hits(n, p) for n in _imports(source) for p in forbidden)


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_modules_fit_on_a_screen(module: str, path: Path) -> None:
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_LINES, f"{module} has {n_lines} lines (> {MAX_LINES}): split it at a natural seam"


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_states_its_purpose_and_exports_its_names(wing: str) -> None:
    package = importlib.import_module(f"gan_equiv.{wing}")
    doc = (package.__doc__ or "").strip()
    assert doc and "placeholder" not in doc
    assert package.__all__ and len(set(package.__all__)) == len(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None
    top = importlib.import_module("gan_equiv")
    for name in top.__all__:  # the top-level names re-export a wing's objects, not copies
        assert getattr(top, name) is not None
