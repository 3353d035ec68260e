"""Client errors in the shape the service's OpenAPI schema declares: ``{"error", "detail"}``.

BentoML 1.4 answers a request its pydantic models refuse with ``detail`` as a list of pydantic
errors, and an ``InvalidArgument`` raised by the service as a one-element list; its own schema
declares an object whose ``detail`` is a string. This ASGI middleware rewrites 4xx JSON bodies
into the declared shape, with every refused field named (``requests.0.timezone: ...``), so
clients (and schemathesis) get what the contract says.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def field_errors(errors: list[Any]) -> str:
    """Pydantic errors as ``location: message`` clauses joined by ``; ``."""
    clauses = []
    for error in errors:
        if isinstance(error, dict):
            location = ".".join(str(part) for part in error.get("loc", ())) or "body"
            clauses.append(f"{location}: {error.get('msg', error)}")
        else:
            clauses.append(str(error))
    return "; ".join(clauses)


def declared_shape(body: Any) -> dict[str, str] | None:
    """``body`` as ``{"error": str, "detail": str}``, or None if it is not an error body."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict) or "error" not in body:
        return None
    shaped = {"error": str(body["error"])}
    detail = body.get("detail")
    if isinstance(detail, list):
        shaped["detail"] = field_errors(detail)
    elif detail is not None:
        shaped["detail"] = str(detail)
    return shaped


class ErrorBodies:
    """ASGI middleware: 4xx JSON bodies rewritten by :func:`declared_shape`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _rewritten(b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def _rewritten(body: bytes) -> bytes:
    try:
        shaped = declared_shape(json.loads(body))
    except ValueError:
        return body
    return body if shaped is None else json.dumps(shaped).encode()
