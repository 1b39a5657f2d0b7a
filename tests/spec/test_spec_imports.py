"""The spec is the bottom of the package: nothing in tunefleet/spec imports upward (storage,
cluster, ...), so every layer can read an Experiment without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "tunefleet" / "spec"


def _imports_outside_spec(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level >= 2 or (node.level == 0 and name.startswith("tunefleet")
                                   and not name.startswith("tunefleet.spec")):
                found.append(f"{path.name}:{node.lineno}: {'.' * node.level}{name}")
        elif isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}: {a.name}" for a in node.names
                      if a.name.startswith("tunefleet") and not a.name.startswith("tunefleet.spec")]
    return found


def test_spec_imports_nothing_above_it():
    files = sorted(SPEC.glob("*.py"))
    assert len(files) >= 5 and all(isinstance(f, Path) for f in files)
    upward = [hit for f in files for hit in _imports_outside_spec(f)]
    assert upward == []
