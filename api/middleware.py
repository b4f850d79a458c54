"""Pure ASGI middleware: a request id on every request, the browser's security headers, a cap on
request body size, and no NUL character in URLs. Their refusals are answered as every error is
(:func:`api.errors.answer`): JSON for the API, a page on the pages' addresses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors

_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class _HttpMiddleware:
    """What these middlewares share: they act on HTTP requests (:meth:`http`); anything else
    the server sends through (lifespan events) passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def _adding_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """``send``, with ``headers`` added to the response's start, each unless the response
    already has one of that name."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = message.setdefault("headers", [])
            names = {name.lower() for name, _ in present}
            present.extend(header for header in headers if header[0] not in names)
        await send(message)

    return send_with_headers


class RequestIdMiddleware(_HttpMiddleware):
    """Takes ``X-Request-ID`` when it is safe, otherwise makes one; echoes it in the response."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        await self.app(scope, receive, _adding_headers(send, [(b"x-request-id", request_id.encode())]))


class SecurityHeadersMiddleware(_HttpMiddleware):
    """Headers a browser obeys: on every response, no guessing content types; on everything
    but the static files, no copy kept in a cache (case and safeguarding details must not stay
    on a shared computer or in a proxy), unless the response says otherwise; on the pages,
    nothing but this site's own scripts, styles and forms, no framing by another site (a
    hidden frame must not click "pin" or "disable account" for a signed-in user), and no page
    address sent to other sites. The API's interactive docs (``/docs``) load their own
    scripts, so the page policy is for the pages' addresses alone."""

    ALWAYS = [(b"x-content-type-options", b"nosniff")]
    NO_STORE = (b"cache-control", b"no-store")
    STATIC = "/static/"
    PAGES = [
        (
            b"content-security-policy",
            b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
            b"object-src 'none'",
        ),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]

    @classmethod
    def headers_for(cls, path: str) -> list[tuple[bytes, bytes]]:
        """The headers every response to ``path`` carries."""
        added = cls.ALWAYS + (cls.PAGES if errors.page_address(path) else [])
        return added if path.startswith(cls.STATIC) else [*added, cls.NO_STORE]

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, _adding_headers(send, self.headers_for(scope["path"])))


class BodySizeLimitMiddleware(_HttpMiddleware):
    """Answers 413 for bodies over ``max_bytes``.

    With a Content-Length the check is immediate (the server holds the client to that length).
    A chunked body is read up to the cap here, before the app sees any of it, so that an
    oversized request is refused whole and nothing is half-processed.
    ``overrides`` gives other caps to path prefixes that take uploads.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: Sequence[tuple[str, int]] = ()) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.overrides = list(overrides)

    def _limit(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await _refuse(scope, receive, send, 413, f"request body larger than {limit} bytes")
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await _refuse(scope, receive, send, 413, f"request body larger than {limit} bytes")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


class NulInUrlMiddleware(_HttpMiddleware):
    """Answers 422 for a NUL character in the path or query (as ``%00``): no id, filter or
    page parameter means one, and the databases disagree on it (PostgreSQL refuses it in text,
    SQLite compares it). Bodies are checked by :class:`triage.models.requests.RequestModel`."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            await _refuse(scope, receive, send, 422, "a NUL character (U+0000) is not allowed in the URL")
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    """A whole error response, sent before the app sees the request."""
    await errors.answer(Request(scope), status, detail)(scope, receive, send)
