"""HTTP models of the assignment service (pydantic v2); the OpenAPI document is built from them.

Every 4xx answer has the one body shape `ErrorBody` {code, message, field}; `code` is stable
(clients branch on it), `message` names the problem and the fix, `field` the request field at
fault or null. The Kafka event is the shared contract `minirec.events.Exposure`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from minirec.ab.assign import REASONS
from minirec.events import MAX_ID

SAMPLE_ASSIGN = {"user_id": 196, "experiment": "ranker_v1"}  # shared by the docs, the tests and the benchmark
Reason = Literal[REASONS]  # type: ignore[valid-type]
ErrorCode = Literal["bad_json", "invalid_request", "body_too_large", "unknown_experiment", "experiment_stopped",
                    "experiment_not_started", "not_found", "method_not_allowed"]


class AssignRequest(BaseModel):
    """Which variant of `experiment` should `user_id` see?"""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": SAMPLE_ASSIGN})

    user_id: int = Field(..., ge=1, le=MAX_ID, strict=True, description="user id (1 .. 2^53, a JSON integer)")
    experiment: str = Field(..., min_length=1, max_length=128, description="experiment name, see GET /experiments")


class AssignResponse(BaseModel):
    experiment: str
    variant: str = Field(..., description="the variant to serve: the assigned one, or the control when "
                                          "in_experiment is false")
    in_experiment: bool = Field(..., description="true: the user is in the experiment and one Exposure "
                                                 "event was logged")
    reason: Reason = Field(..., description="assigned | holdout | outside_layer | audience_mismatch | "
                                            "audience_unknown (Redis did not answer) | outside_coverage")


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    code: ErrorCode
    message: str = Field(..., description="what is wrong and how to fix it")
    field: str | None = Field(None, description="the request field at fault, when there is one")


class HoldoutInfo(BaseModel):
    share: float
    salt: str


class ExperimentInfo(BaseModel):
    name: str
    description: str
    status: Literal["scheduled", "running", "stopped"]
    variants: dict[str, float] = Field(..., description="variant -> weight; the first is the control")
    coverage: float
    layer: str | None
    layer_range: tuple[float, float]
    audience: Literal["all", "new", "returning"]
    salt: str
    start: datetime
    stop: datetime | None


class ExperimentsResponse(BaseModel):
    holdout: HoldoutInfo | None
    layers: dict[str, str]
    experiments: list[ExperimentInfo]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    experiments: int = Field(..., description="experiments loaded from the file")
    kafka: Literal["connected", "unreachable"] = Field(..., description="the Exposure producer")
    reason: str | None = Field(None, description="why not ready, naming the fix")
