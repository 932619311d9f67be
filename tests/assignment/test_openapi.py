"""The OpenAPI document is true: the running service, fuzzed from it, never answers 5xx, and every
answer (2xx and 4xx) matches the status codes, content types and schemas the document declares."""

from __future__ import annotations

import subprocess
import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from minirec.settings import REPO_ROOT

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("method,path,mode", [
    ("POST", "/assign", GenerationMode.POSITIVE), ("POST", "/assign", GenerationMode.NEGATIVE),
    ("GET", "/experiments", GenerationMode.POSITIVE), ("GET", "/healthz", GenerationMode.POSITIVE),
    ("GET", "/readyz", GenerationMode.POSITIVE)])  # the GETs take no input: nothing negative to send
def test_fuzzed_requests_match_the_document(service, method, path, mode):
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    op = schema[path][method]
    seen: list[int] = []
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=60 if path == "/assign" else 5, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(case):
        response = case.call_and_validate(base_url=service.url, checks=checks, timeout=10)
        seen.append(response.status_code)

    check()
    assert seen
    if path == "/assign" and mode == GenerationMode.NEGATIVE:
        assert all(400 <= c < 500 for c in seen), seen


def test_the_document_declares_nullable_fields_and_every_status(service):
    doc = service.http.get("/openapi.json").json()
    assign = doc["paths"]["/assign"]["post"]
    assert set(assign["responses"]) == {"200", "400", "404", "409", "413", "422"}
    body = assign["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["user_id", "experiment"] and body["additionalProperties"] is False
    comps = doc["components"]["schemas"]
    assert {"type": "null"} in comps["ErrorBody"]["properties"]["field"]["anyOf"]
    assert {"type": "null"} in comps["ExperimentInfo"]["properties"]["stop"]["anyOf"]
    for status in ("400", "404", "409", "413", "422"):
        ref = assign["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    assert "503" in doc["paths"]["/readyz"]["get"]["responses"]


def test_a_bad_experiments_file_is_refused_at_start(tmp_path):
    bad = tmp_path / "exp.yaml"
    bad.write_text((REPO_ROOT / "services/assignment/experiments.yaml").read_text()
                   .replace("    coverage: 0.5", "    coverage: 2"))
    out = subprocess.run([sys.executable, "-m", "services.assignment", "--experiments", str(bad)],
                         capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                         env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    line = next(i + 1 for i, t in enumerate(bad.read_text().splitlines()) if t == "    coverage: 2")
    assert f"{bad}:{line}: experiments.list_length_v1.coverage: Input should be less than or equal to 1" in out.stderr
