"""Request and response models of the recommender (pydantic v2).

The same models validate HTTP input (BentoML builds the OpenAPI schema from
them) and shape the responses. The `impressions` Kafka event is a shared
contract and lives in the core package (`minirec.events.Impression`).
`SAMPLE_*` payloads live in `sample_payloads.json`, shared by the API docs,
the tests and the Locust file.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from minirec.events import MAX_ID, Variant

MAX_K = 100
FallbackReason = Literal["cold_start", "bad_features", "online_store_unavailable"]
SAMPLES_PATH = Path(__file__).with_name("sample_payloads.json")


def samples() -> dict:
    """The shared sample payloads (docs, tests, Locust)."""
    return json.loads(SAMPLES_PATH.read_text())


class RecommendRequest(BaseModel):
    """Top-k films for a user."""

    # strict: JSON types as declared (0 is not a boolean, "5" not an integer), as the OpenAPI schema says
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": samples()["recommend"]})

    user_id: int = Field(..., ge=1, le=MAX_ID, description="MovieLens user id")
    k: int = Field(10, ge=1, le=MAX_K, description="number of items to return (1-100)")
    exclude_seen: bool = Field(True, description="drop items the user has already rated")
    variant: Variant = Field("control", description="model arm: control (production) or treatment")
    timings: bool = Field(False, description="include per-stage timings (ms) in the response")


class SimilarItemsRequest(BaseModel):
    """Films closest to a film in the item-embedding space (cosine)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": samples()["similar_items"]})

    item_id: int = Field(..., ge=1, le=MAX_ID, description="MovieLens item id")
    k: int = Field(10, ge=1, le=MAX_K, description="number of items to return (1-100)")
    variant: Variant = Field("control", description="model arm whose embeddings are used")


class Item(BaseModel):
    item_id: int
    title: str
    score: float = Field(..., description="the ranker's score when the bundle's ranking stage reordered this user's list "
                         "(it reorders the user segments, warm and/or cold, where it helped on validation), else retrieval's")
    retrieval_score: float | None = Field(
        None, description="the retrieval stage's score (two-tower + popularity) when a ranker ordered the list")


class RecommendResponse(BaseModel):
    items: list[Item]
    model_version: str
    variant: Variant
    request_id: str
    fallback: FallbackReason | None = Field(
        None, description="why the popularity list was served instead of the model's: cold_start (no online "
                          "row), bad_features (this user's online row is malformed), online_store_unavailable")
    exclude_seen_honoured: bool = Field(
        True, description="false when exclude_seen was asked but the user's seen items could not be read "
                          "(online store unavailable): seen items may then be among the results")
    ranker_fallback: bool = Field(
        False, description="true when the ranking stage failed and the retrieval order was served instead")
    timings_ms: dict[str, float] | None = None


class SimilarItemsResponse(BaseModel):
    item_id: int
    items: list[Item]
    model_version: str
    variant: Variant
    request_id: str


def new_request_id() -> str:
    return uuid.uuid4().hex
