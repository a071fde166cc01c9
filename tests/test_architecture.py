"""The package layout of docs/architecture.md, enforced: which package may import which, and the size of encode/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "preencode"

# Importer -> the packages of ours it may import (besides itself). Finer units are written as paths
# ("encode/fast"); a unit not listed falls back to its package. Keep in step with docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "console": set(),
    "signals": {"errors"},
    "schema": {"errors"},
    "arguments": {"errors"},
    "audio": {"errors"},
    "models": {"errors", "schema", "arguments"},
    "store": {"errors", "schema", "models/config", "models/bottleneck_config"},
    "data": {"errors", "schema", "audio", "store"},
    "encode/fast": {"errors", "models"},
    "encode/posterior": {"models"},
    "encode/full_length": {"errors", "audio", "data", "models", "store", "encode/fast", "encode/posterior"},
    "encode/engine": {"errors", "schema", "arguments", "audio", "data", "models", "store", "encode/fast",
                      "encode/full_length", "encode/posterior", "clock", "signals"},
    "generate": {"errors", "schema", "arguments", "models"},
    "train": {"errors", "schema", "arguments", "audio", "data", "models", "store", "generate", "signals"},
    "tools": {"errors", "schema", "arguments", "models", "store"},
    # subcommands are imported lazily by name, not by import statements
    "cli": {"errors", "arguments", "schema", "clock", "console"},
    "demo": {"cli", "store", "errors", "models", "train", "generate"},
    "__main__": {"cli"},
}


def _unit(parts: list[str]) -> str:
    """The unit of a module path inside the package: ``encode/<sub>`` inside encode/, else the package."""
    if parts[0] == "encode" and len(parts) > 1:
        return f"encode/{parts[1]}"
    return parts[0]


def _imports() -> list[tuple[str, str, str]]:
    """(importing file, its unit, imported module path relative to the package) for every import of ours."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if rel[-1] == "__init__":
            rel = rel[:-1]
            package_parts = rel
        else:
            package_parts = rel[:-1]
        if not rel:  # preencode/__init__.py: lazy re-exports of the public API
            continue
        unit = _unit([p.removesuffix(".py") for p in rel])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package_parts[: len(package_parts) - (node.level - 1)]
                    target = [*base, *(node.module.split(".") if node.module else [])]
                elif node.module and node.module.startswith("preencode."):
                    target = node.module.split(".")[1:]
                else:
                    continue
                names = [target] if node.module else [[*target, a.name] for a in node.names]
                for name in names:
                    found.append((str(path.relative_to(PACKAGE)), unit, "/".join(name)))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("preencode."):
                        found.append((str(path.relative_to(PACKAGE)), unit, "/".join(alias.name.split(".")[1:])))
    return found


def _allowed(unit: str, target: str) -> bool:
    first = target.split("/")[0]
    if not (PACKAGE / first).is_dir() and not (PACKAGE / f"{first}.py").is_file():
        return True  # a name of the public API re-exported by preencode/__init__.py (e.g. __version__)
    target_unit = _unit(target.split("/"))
    if target_unit == unit or target.startswith(unit + "/"):
        return True
    allowed = ALLOWED.get(unit, ALLOWED.get(unit.split("/")[0], set()))
    return any(target == a or target.startswith(a + "/") or target_unit == a for a in allowed)


def test_every_import_follows_the_layout():
    wrong = [f"{file}: imports preencode/{target}" for file, unit, target in _imports() if not _allowed(unit, target)]
    assert not wrong, "imports that docs/architecture.md does not allow:\n" + "\n".join(wrong)


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_every_listed_unit_exists(unit):
    assert (PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file()


def test_encode_top_level_stays_small():
    modules = [p for p in (PACKAGE / "encode").glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 8, sorted(p.name for p in modules)
