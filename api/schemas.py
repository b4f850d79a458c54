"""Response envelopes shared by the routes."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Paged(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int
