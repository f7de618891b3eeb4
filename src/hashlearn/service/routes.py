"""The HTTP routes, grouped in three :class:`fastapi.APIRouter` s; the storage and the collection a
route works on come from dependencies (:func:`readable`, :func:`writable`), the key's role from
:mod:`.auth`."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import ValidationError
from .auth import need_read, need_write
from .schemas import CreateCollection, Ids, Point, Search, SearchResult, Upsert, Vectors
from .storage import MAX_ID, Collection, CollectionConfig, Storage, hasher_from_bytes, vector_methods
from .web import INDEX_HTML

__all__ = ["service_router", "collections_router", "points_router"]


# The dependencies are ``async def``: they do not block, and a plain ``def`` would cost each request one
# thread-pool hop per dependency.
async def storage(request: Request) -> Storage:
    return request.app.state.storage


async def readable(name: str, store: Storage = Depends(storage), role: str = Depends(need_read)) -> Collection:
    return store.get(name)


async def writable(name: str, store: Storage = Depends(storage), role: str = Depends(need_write)) -> Collection:
    return store.get(name)


# -- the service ---------------------------------------------------------------------------------------
service_router = APIRouter(tags=["service"])


@service_router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index_page():
    return INDEX_HTML


@service_router.get("/health")
def health(request: Request, store: Storage = Depends(storage)):
    """Liveness (no key needed). With a valid key: the collections, and what the last start recovered
    (file names only), including collections that could not be opened and why."""
    from .. import __version__

    out = {"status": "ok", "version": __version__}
    if getattr(request.state, "role", None):
        out.update({"collections": len(store.names()), "unavailable": dict(store.unavailable),
                    "recovery": store.recovery})
    return out


@service_router.get("/methods")
def methods(role: str = Depends(need_read)):
    """Vector hashers a collection can use (training needed or not is in each collection's description)."""
    return {"methods": vector_methods()}


# -- collections ------------------------------------------------------------------------------------------
collections_router = APIRouter(prefix="/collections", tags=["collections"])


@collections_router.get("")
def list_collections(store: Storage = Depends(storage), role: str = Depends(need_read)):
    return {"collections": [store.get(n).describe() for n in store.names()]}


@collections_router.put("/{name}", status_code=201)
def create_collection(name: str, body: CreateCollection, store: Storage = Depends(storage),
                      role: str = Depends(need_write)):
    """Create a collection (409 if it exists). A method that learns nothing from data (simhash) is
    searchable at once; others need POST /collections/{name}/train (or a fitted hasher) first."""
    config = CollectionConfig(name=name, dim=body.dim, method=body.method, n_bits=body.n_bits, params=body.params,
                              random_state=body.random_state, metric=body.metric,
                              rerank_candidates=body.rerank_candidates)
    return store.create(config).describe()


@collections_router.get("/{name}")
def describe_collection(coll: Collection = Depends(readable)):
    return coll.describe()


@collections_router.delete("/{name}")
def delete_collection(name: str, store: Storage = Depends(storage), role: str = Depends(need_write)):
    store.delete(name)
    return {"deleted": name}


@collections_router.get("/{name}/stats")
def collection_stats(coll: Collection = Depends(readable)):
    return coll.stats()


@collections_router.post("/{name}/train")
def train(body: Vectors, coll: Collection = Depends(writable)):
    """Fit the collection's hasher on a sample and re-encode every stored vector (durable on return)."""
    return coll.train(body.vectors)


@collections_router.put("/{name}/hasher", openapi_extra={"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_hasher(request: Request, coll: Collection = Depends(writable)):
    """Use a fitted hasher saved by ``hashlearn.io.save`` (raw file bytes as the body). The file is
    checked completely, and every stored vector encoded with it, before anything changes."""
    data = await request.body()
    if not data:
        raise ValidationError("empty body: send the bytes of a hasher file saved by hashlearn.io.save")

    def work():
        hasher = hasher_from_bytes(data, coll.config.dim, max_bits=coll.max_bits)
        return coll.set_hasher(hasher)

    return await run_in_threadpool(work)


@collections_router.post("/{name}/snapshot")
def snapshot(coll: Collection = Depends(writable)):
    """Save a snapshot now and start a new log segment."""
    return coll.snapshot()


# -- points --------------------------------------------------------------------------------------------------
points_router = APIRouter(prefix="/collections/{name}", tags=["points"])


@points_router.post("/points")
def upsert(body: Upsert, coll: Collection = Depends(writable)):
    """Insert or replace points; answered once the batch is on disk."""
    return coll.upsert(body.ids, body.vectors, body.payloads)


@points_router.post("/points/delete")
def delete_points(body: Ids, coll: Collection = Depends(writable)):
    return coll.delete(body.ids)


@points_router.get("/points/{point_id}", response_model=Point)
def get_point(point_id: int, coll: Collection = Depends(readable)):
    if not 0 <= point_id <= MAX_ID:
        raise ValidationError(f"point id must be in [0, 2^63-1], got {point_id}")
    return coll.get(point_id)


@points_router.get("/ids")
def list_ids(offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=100000),
             coll: Collection = Depends(readable)):
    """Ids of the collection in increasing order, one page at a time."""
    return coll.list_ids(offset, limit)


@points_router.post("/points/get")
def get_points(body: Ids, coll: Collection = Depends(readable)):
    """Several points by id; ``null`` for ids not in the collection."""
    return {"points": coll.get_many(body.ids)}


@points_router.post("/search", response_model=SearchResult)
def search(body: Search, coll: Collection = Depends(readable)):
    """k nearest points per query vector. Rows hold only the points found (at most k). ``metric`` says
    what the distances are: ``hamming`` (integers) without rerank, else the collection metric over the
    best ``candidates`` Hamming matches."""
    D, I, metric = coll.search(body.vectors, body.k, rerank=body.rerank, candidates=body.candidates,
                               filter=body.filter)
    found = I >= 0
    cast = int if metric == "hamming" else float
    ids = [row[ok].tolist() for row, ok in zip(I, found)]
    dists = [[cast(v) for v in row[ok].tolist()] for row, ok in zip(D, found)]
    # Built directly (the response model documents it): skips re-validating our own output.
    return Response(json.dumps({"ids": ids, "distances": dists, "metric": metric}, separators=(",", ":")),
                    media_type="application/json")
