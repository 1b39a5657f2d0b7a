"""Strict pydantic base: unknown keys are errors that suggest the key that was meant."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["StrictModel", "suggest"]


def suggest(word: str, valid: list[str] | tuple[str, ...]) -> str:
    """`did you mean 'x'? ` text for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), list(valid), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


class StrictModel(BaseModel):
    """Frozen model that rejects unknown keys with a suggestion and the list of valid ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
    # Keys renamed since they were first published: old name -> new name, still accepted.
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in cls.renamed.items():
                if old in data:
                    if new in data:
                        raise ValueError(f"unknown key '{old}'; it is the old name of '{new}', "
                                         f"so give only '{new}'")
                    data = {(new if k == old else k): v for k, v in data.items()}
            valid = [name for name, f in cls.model_fields.items() if not f.exclude]
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(
                        f"unknown key '{key}'; {suggest(key, valid)}"
                        f"valid keys here: {', '.join(valid)}"
                    )
        return data
