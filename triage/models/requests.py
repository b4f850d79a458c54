"""The base of every request body the API accepts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class RequestModel(BaseModel):
    """A request body. Unknown fields are refused (a misspelt field is an error, not a value
    silently dropped), and so is a NUL character anywhere in a text value: no field means one,
    and PostgreSQL cannot store it (SQLite would, so the two backends would disagree)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        if (where := _nul_in(data)) is not None:
            raise ValueError(f"{where or 'body'}: a NUL character (U+0000) is not allowed in text")
        return data


def _nul_in(value: Any, path: str = "") -> str | None:
    """The dotted path of the first text value holding a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        name = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return name
        if (found := _nul_in(item, name)) is not None:
            return found
    return None
