"""YAML in and out: floats like ``1e-4`` read as numbers, syntax errors with their line,
``--set a.b=c`` overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

__all__ = ["load_yaml", "dump_yaml", "apply_overrides"]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float (YAML 1.1 needs ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _parse(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(source, f"YAML syntax error{where}: {problem}",
                        fix="fix the indentation or quoting there") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a spec file into plain data."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "spec file not found", fix="check the path")
    data = _parse(path.read_text(), str(path))
    if not isinstance(data, dict):
        raise SpecError(str(path), "a spec must be a mapping of sections (name, data, model, ...)",
                        type(data).__name__)
    return data


def dump_yaml(data: dict[str, Any], path: str | Path) -> None:
    """Write plain data as YAML, keys in their given order."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` set (value parsed as YAML)."""
    import copy

    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError("--set", "an override must look like key.path=value", item,
                            fix="for example --set search.num_samples=8")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(key, f"cannot set a key inside '{part}', which is a value", child)
            node = child
        node[parts[-1]] = _parse(raw, f"--set {key}") if raw.strip() else raw
    return result
