"""The serving tests' trained world (tests/serving/conftest.py), for the whole-stack smoke test."""

from tests.serving.conftest import world  # noqa: F401
