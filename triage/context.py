"""Who is acting and on behalf of which request: passed into every service that changes data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from triage.errors import PermissionDeniedError
from triage.models.accounts import Account, Role


@dataclass(frozen=True)
class Context:
    actor: Account | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor else None

    @property
    def actor_name(self) -> str:
        return self.actor.username if self.actor else "system"

    def require(self, *roles: Role) -> Account:
        """The acting account, if its role is one of ``roles``; otherwise 403."""
        if self.actor is None or self.actor.role not in roles:
            raise PermissionDeniedError(
                f"this action needs one of the roles: {', '.join(r.value for r in roles)}"
            )
        return self.actor


def system_context(request_id: str | None = None) -> Context:
    """For the CLI and workers acting without a logged-in account."""
    return Context(actor=None, request_id=request_id or uuid.uuid4().hex)
