"""The framework's floor: a BentoML service with the recommender's settings whose
`/recommend` returns a constant. `make bench-serving` measures it beside the
real service, so the cost of the pipeline is read against what BentoML alone
costs on this machine.

    bentoml serve services.recommender.floor:Floor --port 3002
"""

from __future__ import annotations

import os

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

import bentoml  # noqa: E402

from services.recommender.options import service_options  # noqa: E402
from services.recommender.schemas import Item, RecommendRequest, RecommendResponse  # noqa: E402

CONSTANT = RecommendResponse(items=[Item(item_id=i, title=f"item {i}", score=1.0) for i in range(1, 11)],
                             model_version="floor", variant="control", request_id="floor")


@bentoml.service(**service_options("recommender_floor"))
class Floor:
    def __init__(self) -> None:
        from minirec.settings import get_settings

        if get_settings().recommender_gc_freeze:  # the same heap treatment as the recommender's worker
            from services.recommender.heap import settle

            settle()

    @bentoml.api(route="/recommend")
    def recommend(self, request: RecommendRequest, /) -> RecommendResponse:
        """Validates the request like the recommender, then returns a constant."""
        return CONSTANT
