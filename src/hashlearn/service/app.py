"""The FastAPI application over :class:`~hashlearn.service.storage.Storage`.

Routes are in :mod:`.routes`, keys in :mod:`.auth`, body guards in :mod:`.middleware`. Errors are JSON
``{"detail": "..."}`` naming the problem: 400 ambiguous request framing, 401 no or unknown key, 403 wrong
role, 404 unknown collection or point, 408 body not received in time, 409 conflict (exists, not
trained), 413 body too large, 422 invalid input or over a limit, 503 collection unavailable (not
opened after a start, or read-only; see /health), 507 the disk refused the write (nothing was
acknowledged). See ``docs/service.md``.
"""

from __future__ import annotations

import errno
import json
import os
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import FileFormatError, HashlearnError, UnknownMethodError, ValidationError
from .auth import ENV_KEYS, ROLES, AuthGate, KeyRing, load_api_keys
from .middleware import BodyGuard
from .routes import collections_router, points_router, service_router
from .storage import Conflict, Limits, NotFound, Storage, Unavailable
from .storage.errors import is_environmental

__all__ = ["create_app", "load_api_keys", "ROLES", "ENV_KEYS"]

_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class ASCIIJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: any Python string (even one holding a lone
    surrogate from a client's ``\\ud800``) can be sent, so an error message can never fail to encode."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _detail(status: int, detail: str, headers=None) -> ASCIIJSONResponse:
    return ASCIIJSONResponse({"detail": detail}, status_code=status, headers=headers)


def _status_of(exc: HashlearnError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, Unavailable):
        return 503
    if isinstance(exc, (ValidationError, UnknownMethodError, FileFormatError)):
        return 422
    return 400


def _body_problem(cause: BaseException | None) -> str:
    if isinstance(cause, RecursionError):
        return "its JSON is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(cause, ValueError):
        return str(cause).split("; use sys.", 1)[0]  # (Python's advice to raise its digit limit is not ours)
    return type(cause).__name__ if cause is not None else "unknown reason"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return _detail(422, f"the request body could not be parsed: {_body_problem(exc.__cause__)}")
        return _detail(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors()[:5]:
            if err.get("type") == "json_invalid":
                loc = err.get("loc", ())
                where = f" at position {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
                why = (err.get("ctx") or {}).get("error") or err.get("msg")
                problems.append(f"the request body is not valid JSON ({why}{where})")
                continue
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        return _detail(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(HashlearnError)
    async def _hashlearn_error(request: Request, exc: HashlearnError):
        return _detail(_status_of(exc), str(exc))

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError):
        if exc.errno in _DISK_FULL:
            return _detail(507, f"the write was refused by the disk ({os.strerror(exc.errno)}); nothing was acknowledged")
        if is_environmental(exc):
            return _detail(503, f"the storage is unavailable ({os.strerror(exc.errno)}); nothing was acknowledged")
        raise exc


def create_app(data_dir, *, api_keys: Optional[dict] = None, auth: bool = True, max_body_bytes: int = 64 << 20,
               max_batch: int = 10000, max_queries: int = 1000, max_k: int = 10000, max_candidates: int = 10000,
               max_rerank_work: int = 200_000_000, max_bits: Optional[int] = None, body_timeout: float = 30.0,
               snapshot_records: int = 1000, snapshot_bytes: int = 256 << 20, fsync: bool = True) -> FastAPI:
    """Build the application over ``data_dir`` (locked, opened and recovered now).

    Parameters
    ----------
    data_dir : path of the data directory (refused if another server holds it)
    api_keys : {key: "read" | "write"}; required unless ``auth=False``
    auth : bool, default True. ``False`` serves without keys (every caller may write).
    max_body_bytes : requests with a larger body get 413
    max_batch : vectors per upsert/train request, ids per delete/get request (422 beyond)
    max_queries, max_k : query vectors per search, results per query
    max_candidates : Hamming candidates re-ranked per query (and a collection's default at most)
    max_rerank_work : ``nq × candidates × dim`` of one re-ranked search
    max_bits : longest code (default: :data:`hashlearn.registry.MAX_BITS`)
    body_timeout : seconds to receive a request body before answering 408
    snapshot_records, snapshot_bytes, fsync : see :class:`~hashlearn.service.storage.Storage`
    """
    from .. import __version__

    if auth and not api_keys:
        raise ValidationError("no API keys given: pass --api-keys FILE or set HASHLEARN_API_KEYS (or --no-auth)")
    limits = Limits(max_rows=max_batch, max_queries=max_queries, max_k=max_k, max_candidates=max_candidates,
                    max_rerank_work=max_rerank_work, max_bits=max_bits)
    storage = Storage(data_dir, snapshot_records=snapshot_records, snapshot_bytes=snapshot_bytes, fsync=fsync,
                      limits=limits)

    @asynccontextmanager
    async def lifespan(app):
        yield
        storage.close(snapshot=True)  # a clean stop leaves a snapshot: the next start replays nothing

    app = FastAPI(title="hashlearn", version=__version__, lifespan=lifespan, default_response_class=ASCIIJSONResponse,
                  description="Persistent collections of vectors searched through binary codes.")
    app.state.storage = storage
    app.state.limits = limits
    _install_error_handlers(app)
    for router in (service_router, collections_router, points_router):
        app.include_router(router)
    # The last middleware added is the outermost: keys are checked before the body guard reads anything.
    app.add_middleware(BodyGuard, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(AuthGate, keyring=KeyRing(dict(api_keys or {}), auth=auth))
    return app
