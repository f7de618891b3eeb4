"""Request and response bodies of the HTTP API (pydantic models; they make the OpenAPI schema).

Upper limits that the server's operator configures (rows per request, candidates, bits ...) are
checked by the storage layer, whose messages name the configured limit; the models check types.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

__all__ = ["CreateCollection", "Vectors", "Upsert", "Ids", "Search", "SearchResult", "Point"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCollection(_Model):
    dim: StrictInt = Field(ge=1, le=65536, description="Vector dimension")
    method: StrictStr = Field("simhash", description="A vector hasher (GET /methods). simhash needs no training.")
    n_bits: StrictInt = Field(64, ge=1, description="Code length (at most the server's --max-bits)")
    params: dict[str, Any] = Field(default_factory=dict, description="Extra hasher parameters")
    random_state: StrictInt = Field(0, ge=0, le=2**32 - 1)
    metric: Literal["l2", "ip", "cosine"] = Field("l2", description="Metric of re-ranked searches")
    rerank_candidates: StrictInt = Field(100, ge=1, description="Default Hamming candidates re-scored by rerank")


class Vectors(_Model):
    vectors: list[list[StrictFloat]] = Field(min_length=1)


class Upsert(_Model):
    ids: list[StrictInt] = Field(min_length=1)
    vectors: list[list[StrictFloat]] = Field(min_length=1)
    payloads: Optional[list[Optional[dict[str, Any]]]] = Field(
        None, description="One JSON object (or null) per point: at most 16 KiB and 32 levels deep each")


class Ids(_Model):
    ids: list[StrictInt] = Field(min_length=1)


class Search(_Model):
    vectors: list[list[StrictFloat]] = Field(min_length=1)
    k: StrictInt = Field(10, ge=1)
    rerank: StrictBool = Field(False, description="Re-score the best Hamming candidates with the collection metric")
    candidates: Optional[StrictInt] = Field(None, ge=1, description="Candidates to re-score (default: the "
                                            "collection's rerank_candidates; capped at the points searched)")
    filter: Optional[dict[str, Any]] = Field(
        None, description="Keep only points whose payload has payload[key] == value for every pair (top-level keys; "
                          "JSON equality: true is not 1); the top-k is exact among the matching points")


class SearchResult(BaseModel):
    ids: list[list[int]]
    distances: list[list[float]] = Field(description="Hamming distances (integers) without rerank; with rerank the "
                                         "collection metric: squared L2, negative inner product or 1 - cosine")
    metric: Literal["hamming", "l2", "ip", "cosine"] = Field(description="What the distances are")


class Point(BaseModel):
    id: int
    vector: list[float]
    payload: Optional[dict[str, Any]] = None
