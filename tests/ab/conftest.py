"""Shared A/B fixtures: the repository's experiments file and an Assigner over it."""

from __future__ import annotations

import pytest

from minirec.ab.assign import Assigner
from minirec.ab.config import load
from minirec.settings import REPO_ROOT

EXPERIMENTS = REPO_ROOT / "services" / "assignment" / "experiments.yaml"


@pytest.fixture(scope="session")
def experiments():
    return load(EXPERIMENTS)


@pytest.fixture(scope="session")
def assigner(experiments):
    return Assigner(experiments)
