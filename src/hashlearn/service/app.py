"""The FastAPI application: REST endpoints over :class:`~hashlearn.service.storage.Storage`.

Authentication: ``Authorization: Bearer KEY``; each key has the role ``read`` (list, describe, get,
search, stats) or ``write`` (everything). ``GET /health``, ``GET /`` (the web page) and the OpenAPI
documents need no key. Errors are JSON ``{"detail": "..."}`` naming the problem: 401 no or unknown key,
403 wrong role, 404 unknown collection or point, 409 conflict (exists, not trained), 413 request too
large, 422 invalid input, 507 the disk refused the write (nothing was acknowledged).
"""

from __future__ import annotations

import errno
import hmac
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from ..errors import FileFormatError, HashlearnError, UnknownMethodError, ValidationError
from .storage import MAX_ID, CollectionConfig, Conflict, NotFound, Storage, hasher_from_bytes
from .web import INDEX_HTML

__all__ = ["create_app", "load_api_keys", "ROLES"]

ROLES = ("read", "write")
ENV_KEYS = "HASHLEARN_API_KEYS"


# -- API keys ---------------------------------------------------------------------------------------
def load_api_keys(path=None, env: Optional[str] = None) -> dict[str, str]:
    """API keys from a file (lines ``KEY ROLE``; ``#`` comments and blank lines ignored) and/or the
    ``HASHLEARN_API_KEYS`` value (``KEY:ROLE`` items separated by commas). Returns {key: role}."""
    keys: dict[str, str] = {}

    def add(key: str, role: str, where: str) -> None:
        if role not in ROLES:
            raise ValidationError(f"{where}: role must be 'read' or 'write', got {role!r}")
        if len(key) < 8:
            raise ValidationError(f"{where}: API keys must have at least 8 characters")
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


# -- request / response models -----------------------------------------------------------------------
Id = Field(ge=0, le=MAX_ID)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCollection(_Model):
    dim: StrictInt = Field(ge=1, le=65536, description="Vector dimension")
    method: StrictStr = Field("simhash", description="A registered vector hasher (see GET /methods)")
    n_bits: StrictInt = Field(64, ge=1, le=4096)
    params: dict[str, Any] = Field(default_factory=dict, description="Extra hasher parameters")
    random_state: StrictInt = Field(0, ge=0, le=2**32 - 1)
    metric: Literal["l2", "ip", "cosine"] = "l2"
    rerank_candidates: StrictInt = Field(100, ge=1, le=100000, description="Hamming candidates re-scored by rerank")


class Vectors(_Model):
    vectors: list[list[StrictFloat]] = Field(min_length=1)


class Upsert(_Model):
    ids: list[StrictInt] = Field(min_length=1)
    vectors: list[list[StrictFloat]] = Field(min_length=1)
    payloads: Optional[list[Optional[dict[str, Any]]]] = None


class Ids(_Model):
    ids: list[StrictInt] = Field(min_length=1)


class Search(_Model):
    vectors: list[list[StrictFloat]] = Field(min_length=1)
    k: StrictInt = Field(10, ge=1, le=10000)
    rerank: StrictBool = False
    candidates: Optional[StrictInt] = Field(None, ge=1, le=100000)
    filter: Optional[dict[str, Any]] = Field(
        None, description="Keep only points whose payload has payload[key] == value for every pair (top-level keys; "
                          "JSON equality: true is not 1); the top-k is exact among the matching points")


class SearchResult(BaseModel):
    ids: list[list[int]]
    distances: list[list[float]]


class Point(BaseModel):
    id: int
    vector: list[float]
    payload: Optional[dict[str, Any]] = None


# -- the app ------------------------------------------------------------------------------------------
class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    return await self._too_large(send, declared)
        seen = 0
        started = rejected = False

        async def limited_receive():
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 now and tell the app the client went away; its own answer is dropped.
                    rejected = True
                    if not started:
                        await self._too_large(send, f"more than {self.max_bytes}")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    async def _too_large(self, send, size):
        body = json.dumps({"detail": f"request body of {size} bytes exceeds the limit of {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(data_dir, *, api_keys: Optional[dict] = None, auth: bool = True, max_body_bytes: int = 64 << 20,
               max_batch: int = 10000, max_queries: int = 1000, snapshot_records: int = 1000,
               snapshot_bytes: int = 256 << 20, fsync: bool = True) -> FastAPI:
    """Build the application over ``data_dir`` (opened, and recovered, now).

    Parameters
    ----------
    data_dir : path of the data directory
    api_keys : {key: "read" | "write"}; required unless ``auth=False``
    auth : bool, default True. ``False`` serves without keys (every caller may write).
    max_body_bytes : requests with a larger body get 413
    max_batch, max_queries : most vectors per upsert/train, most queries per search (422 beyond)
    snapshot_records, snapshot_bytes, fsync : see :class:`~hashlearn.service.storage.Storage`
    """
    from .. import __version__

    if auth and not api_keys:
        raise ValidationError("no API keys given: pass --api-keys FILE or set HASHLEARN_API_KEYS (or --no-auth)")
    keys = dict(api_keys or {})
    storage = Storage(data_dir, snapshot_records=snapshot_records, snapshot_bytes=snapshot_bytes, fsync=fsync)

    @asynccontextmanager
    async def lifespan(app):
        yield
        storage.close(snapshot=True)  # a clean stop leaves a snapshot: the next start replays nothing

    app = FastAPI(title="hashlearn", version=__version__, lifespan=lifespan,
                  description="Persistent collections of vectors searched through binary codes.")
    app.state.storage = storage
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer KEY")

    def role_of(creds: Optional[HTTPAuthorizationCredentials]) -> str:
        if not auth:
            return "write"
        if creds is None or not creds.credentials:
            raise _HTTPError(401, "missing API key: send 'Authorization: Bearer KEY'")
        token = creds.credentials.encode()
        role = None
        for key, r in keys.items():  # compare with every key in constant time
            if hmac.compare_digest(key.encode(), token):
                role = r
        if role is None:
            raise _HTTPError(401, "unknown API key")
        return role

    def need_read(creds: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
        return role_of(creds)

    def need_write(creds: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> str:
        role = role_of(creds)
        if role != "write":
            raise _HTTPError(403, "this API key has the read role; writes need a key with the write role")
        return role

    # -- errors --
    @app.exception_handler(_HTTPError)
    async def _http_error(request: Request, exc: "_HTTPError"):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(HashlearnError)
    async def _hashlearn_error(request: Request, exc: HashlearnError):
        if isinstance(exc, (NotFound,)):
            status = 404
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, (ValidationError, UnknownMethodError, FileFormatError)):
            status = 422
        else:
            status = 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError):
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return JSONResponse({"detail": f"the write was refused by the disk ({os.strerror(exc.errno)}); "
                                           "nothing was acknowledged"}, status_code=507)
        return JSONResponse({"detail": f"storage error: {exc}"}, status_code=500)

    # -- endpoints --
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page():
        return INDEX_HTML

    @app.get("/health", tags=["service"])
    def health():
        """Liveness, no key needed; says what the last start recovered."""
        names = storage.names()
        return {"status": "ok", "version": __version__, "collections": len(names), "recovery": storage.recovery}

    @app.get("/methods", tags=["service"])
    def methods(role: str = Depends(need_read)):
        """Vector hashers a collection can use."""
        from ..hashing import list_methods

        return {"methods": list_methods("vector")}

    @app.get("/collections", tags=["collections"])
    def list_collections(role: str = Depends(need_read)):
        return {"collections": [storage.get(n).describe() for n in storage.names()]}

    @app.put("/collections/{name}", status_code=201, tags=["collections"])
    def create_collection(name: str, body: CreateCollection, role: str = Depends(need_write)):
        """Create a collection (409 if it exists). Train it, or upload a fitted hasher, before searching."""
        config = CollectionConfig(name=name, dim=body.dim, method=body.method, n_bits=body.n_bits,
                                  params=body.params, random_state=body.random_state, metric=body.metric,
                                  rerank_candidates=body.rerank_candidates)
        return storage.create(config).describe()

    @app.get("/collections/{name}", tags=["collections"])
    def describe_collection(name: str, role: str = Depends(need_read)):
        return storage.get(name).describe()

    @app.delete("/collections/{name}", tags=["collections"])
    def delete_collection(name: str, role: str = Depends(need_write)):
        storage.delete(name)
        return {"deleted": name}

    @app.get("/collections/{name}/stats", tags=["collections"])
    def collection_stats(name: str, role: str = Depends(need_read)):
        return storage.get(name).stats()

    @app.post("/collections/{name}/train", tags=["collections"])
    def train(name: str, body: Vectors, role: str = Depends(need_write)):
        """Fit the collection's hasher on a sample and re-encode every stored vector (durable on return)."""
        coll = storage.get(name)
        _check_rows(body.vectors, max_batch)
        return coll.train(body.vectors, max_rows=max_batch)

    @app.put("/collections/{name}/hasher", tags=["collections"],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload_hasher(name: str, request: Request, role: str = Depends(need_write)):
        """Use a fitted hasher saved by ``hashlearn.io.save`` (raw file bytes as the body)."""
        coll = storage.get(name)
        data = await request.body()
        if not data:
            raise ValidationError("empty body: send the bytes of a hasher file saved by hashlearn.io.save")
        from starlette.concurrency import run_in_threadpool

        def work():
            hasher = hasher_from_bytes(data, coll.folder, coll.config.dim)
            return coll.set_hasher(hasher)

        return await run_in_threadpool(work)

    @app.post("/collections/{name}/points", tags=["points"])
    def upsert(name: str, body: Upsert, role: str = Depends(need_write)):
        """Insert or replace points; answered once the batch is on disk."""
        coll = storage.get(name)
        _check_rows(body.vectors, max_batch)
        return coll.upsert(body.ids, body.vectors, body.payloads, max_rows=max_batch)

    @app.post("/collections/{name}/points/delete", tags=["points"])
    def delete_points(name: str, body: Ids, role: str = Depends(need_write)):
        if len(body.ids) > max_batch:
            raise ValidationError(f"ids has {len(body.ids)} entries, more than the limit of {max_batch} per request")
        return storage.get(name).delete(body.ids)

    @app.get("/collections/{name}/points/{point_id}", response_model=Point, tags=["points"])
    def get_point(name: str, point_id: int, role: str = Depends(need_read)):
        if not 0 <= point_id <= MAX_ID:
            raise ValidationError(f"point id must be in [0, 2^63-1], got {point_id}")
        return storage.get(name).get(point_id)

    @app.get("/collections/{name}/ids", tags=["points"])
    def list_ids(name: str, offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=100000),
                 role: str = Depends(need_read)):
        """Ids of the collection in increasing order, one page at a time."""
        return storage.get(name).list_ids(offset, limit)

    @app.post("/collections/{name}/points/get", tags=["points"])
    def get_points(name: str, body: Ids, role: str = Depends(need_read)):
        """Several points by id; ``null`` for ids not in the collection."""
        if len(body.ids) > max_batch:
            raise ValidationError(f"ids has {len(body.ids)} entries, more than the limit of {max_batch} per request")
        return {"points": storage.get(name).get_many(body.ids)}

    @app.post("/collections/{name}/search", response_model=SearchResult, tags=["points"])
    def search(name: str, body: Search, role: str = Depends(need_read)):
        """k nearest points per query vector. Rows hold only the points found (at most k). Distances are
        Hamming distances, or with ``rerank`` the collection metric over the best ``candidates``."""
        coll = storage.get(name)
        _check_rows(body.vectors, max_queries, "queries")
        D, I = coll.search(body.vectors, body.k, rerank=body.rerank, candidates=body.candidates,
                           filter=body.filter, max_rows=max_queries)
        ids, dists = [], []
        for d, i in zip(D, I):
            found = i >= 0
            ids.append(i[found].tolist())
            dists.append(np.asarray(d[found], np.float64).tolist())
        # Built directly (the response model documents it): skips re-validating our own output.
        return Response(json.dumps({"ids": ids, "distances": dists}, separators=(",", ":")),
                        media_type="application/json")

    @app.post("/collections/{name}/snapshot", tags=["collections"])
    def snapshot(name: str, role: str = Depends(need_write)):
        """Save a snapshot now and start a new log segment."""
        return storage.get(name).snapshot()

    return app


def _check_rows(vectors, limit: int, what: str = "vectors") -> None:
    if len(vectors) > limit:
        raise ValidationError(f"{what} has {len(vectors)} rows, more than the limit of {limit} per request")


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail
