"""Drift fixtures: a reference built from MovieLens without training (monitoring.drift.reference)
and the study that draws windows from it (monitoring.drift.study), both once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def ml_reference(movielens, tmp_path_factory):
    from monitoring.drift.reference import build_reference

    return build_reference(movielens, tmp_path_factory.mktemp("drift_ref"))


@pytest.fixture(scope="session")
def study(ml_reference, movielens):
    from monitoring.drift.study import Study

    return Study(ml_reference, movielens, window=500, seed=0)


@pytest.fixture(scope="session")
def methods():
    from minirec.settings import Settings
    from monitoring.drift.compare import Methods

    return Methods.from_settings(Settings())  # the .env defaults, the ones `make drift` uses


@pytest.fixture(scope="session")
def study_baseline(study):
    return study.baseline(3)
