"""The one error type for bad input: it names the field, the value and the fix."""

from __future__ import annotations

from typing import Any

__all__ = ["SpecError"]

_MISSING = object()


class SpecError(ValueError):
    """Invalid experiment input, caught before any training starts.

    ``field`` is a dotted path into the spec (``search_space.learning_rate``); the message
    reads ``field: problem, got value. fix``.
    """

    def __init__(self, field: str, problem: str, value: Any = _MISSING, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.value = None if value is _MISSING else value
        self.fix = fix
        text = f"{field}: {problem}" if field else problem
        if value is not _MISSING:
            text += f", got {value!r}"
        if fix:
            text += f". {fix[0].upper()}{fix[1:]}"
        super().__init__(text)

    @classmethod
    def many(cls, messages: list[str]) -> "SpecError":
        """Several problems at once (from one validation pass), one per line."""
        err = cls("", "\n".join(messages))
        return err
