"""The project's two BentoML workarounds, each isolated in one function, each checked here so that an
upgrade that moves or fixes what they patch fails this file first (not a benchmark, weeks later)."""

from __future__ import annotations

import bentoml


def test_pinned_version_is_the_one_the_workarounds_were_written_for():
    # minirec/train/registry.py::_store/_create and services/recommender/service.py::_cache_root_model_schemas
    assert bentoml.__version__ == "1.4.40", "BentoML changed: re-check both workarounds, then update this pin"


def test_root_model_schema_cache_patches_the_class_bentoml_calls():
    from _bentoml_sdk.io_models import IORootModel

    import services.recommender.service  # noqa: F401  (applies the patch at import)

    cache = IORootModel._minirec_schema_cache
    assert cache is not None

    class Ids(IORootModel):
        root: list[int]

    first = Ids.model_json_schema()
    size = len(cache)
    second = Ids.model_json_schema()
    assert len(cache) == size and first == second  # computed once, served from the cache
    first.pop("type", None)
    assert "type" in Ids.model_json_schema()  # callers get a copy: popping keys cannot corrupt the cache
    assert Ids.model_validate_json(b"[1, 2]").root == [1, 2]
