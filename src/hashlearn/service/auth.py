"""API keys: loading them, and checking them before a request body is read.

``Authorization: Bearer KEY``; each key has the role ``read`` (list, describe, get, search, stats) or
``write`` (everything). Keys have at least 8 characters. :class:`AuthGate` is the outermost ASGI
middleware: a request without a valid key is answered 401 before a single byte of its body is read,
so a client without a key cannot make the server parse a large body. The routes then only check the
role (403) through the :func:`need_read` / :func:`need_write` dependencies.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Optional

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import ValidationError

__all__ = ["ROLES", "ENV_KEYS", "MIN_KEY_LENGTH", "load_api_keys", "KeyRing", "AuthGate", "need_read", "need_write",
           "PUBLIC_PATHS"]

ROLES = ("read", "write")
ENV_KEYS = "HASHLEARN_API_KEYS"
MIN_KEY_LENGTH = 8
#: Paths served without a key (the web page, liveness, the API description).
PUBLIC_PATHS = frozenset({"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def load_api_keys(path=None, env: Optional[str] = None) -> dict[str, str]:
    """API keys from a file (lines ``KEY ROLE``; ``#`` comments and blank lines ignored) and/or the
    ``HASHLEARN_API_KEYS`` value (``KEY:ROLE`` items separated by commas). Returns {key: role}."""
    keys: dict[str, str] = {}

    def add(key: str, role: str, where: str) -> None:
        if role not in ROLES:
            raise ValidationError(f"{where}: role must be 'read' or 'write', got {role!r}")
        if len(key) < MIN_KEY_LENGTH:
            raise ValidationError(f"{where}: API keys must have at least {MIN_KEY_LENGTH} characters")
        keys[key] = role

    if path is not None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise ValidationError(f"cannot read API key file {path}: {exc.strerror or exc}") from None
        for no, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValidationError(f"{path}:{no}: expected 'KEY ROLE', got {len(parts)} fields")
            add(parts[0], parts[1], f"{path}:{no}")
    if env:
        for item in env.split(","):
            item = item.strip()
            if not item:
                continue
            if ":" not in item:
                raise ValidationError(f"{ENV_KEYS}: expected KEY:ROLE items, got {item[:3]}...")
            key, role = item.rsplit(":", 1)
            add(key.strip(), role.strip(), ENV_KEYS)
    return keys


class KeyRing:
    """The server's keys; ``auth=False`` gives every caller the write role."""

    def __init__(self, keys: dict[str, str], *, auth: bool = True):
        self.keys = {k.encode(): r for k, r in keys.items()}
        self.auth = auth

    def role_of(self, authorization: Optional[bytes]) -> tuple[Optional[str], str]:
        """(role, why not) for an ``Authorization`` header value; role None when there is no valid key."""
        if not self.auth:
            return "write", ""
        if not authorization:
            return None, "missing API key: send 'Authorization: Bearer KEY'"
        scheme, _, token = authorization.strip().partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return None, "missing API key: send 'Authorization: Bearer KEY'"
        role = None
        for key, r in self.keys.items():  # compare with every key, in constant time
            if hmac.compare_digest(key, token):
                role = r
        return (role, "") if role else (None, "unknown API key")


class AuthGate:
    """ASGI middleware: 401 for a request without a valid key (public paths excepted), answered before
    the body is read; the role goes to ``request.state.role`` (None on a public path without a key)."""

    def __init__(self, app, keyring: KeyRing):
        self.app, self.keyring = app, keyring

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        role, why = self.keyring.role_of(header)
        scope.setdefault("state", {})["role"] = role
        if role is None and scope.get("path") not in PUBLIC_PATHS:
            body = json.dumps({"detail": why}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        return await self.app(scope, receive, send)


_bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer KEY")


async def need_read(request: Request, creds: Optional[HTTPAuthorizationCredentials] = Depends(_bearer)) -> str:
    """Any valid key (the gate already refused requests without one)."""
    role = getattr(request.state, "role", None)
    if role is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"})
    return role


async def need_write(role: str = Depends(need_read)) -> str:
    if role != "write":
        raise HTTPException(403, "this API key has the read role; writes need a key with the write role")
    return role
