"""Does a live HTTP service keep the promises of its OpenAPI document? Schemathesis, every check.

The reusable part for every HTTP service of the project (the recommender, the assignment service):

    server, url = start_http_service("assignment", argv, state_dir, port=port, env=env, ready_path="/readyz")
    result = run_schemathesis(f"{url}/docs.json", tmp_path / "st", max_examples=150)
    assert result.ok, result.describe()
    server.stop()

`run_schemathesis` runs the `st` CLI that ships with the venv (`st run URL --checks all`, every
phase: examples, coverage, fuzzing, stateful) with a fixed seed and one worker, reads its JSON run
report and returns the failures, each named by operation, check and the check's own message.
A failure means the document and the service disagree: a response outside its declared schema
or status list, a valid request refused, an invalid one accepted, a 5xx.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from minirec.infra.process import Server

ST = str(Path(sys.executable).with_name("st"))


def start_http_service(name: str, argv: list[str], state_dir: Path, *, port: int, env: dict[str, str] | None = None,
                       ready_path: str = "/readyz", cwd: Path | None = None, start_timeout_s: float = 120
                       ) -> tuple[Server, str]:
    """Start `argv` (a server listening on 127.0.0.1:port) in its own process group; wait until
    GET ready_path answers 200. Returns the Server (call .stop()) and its base URL."""
    from minirec.settings import REPO_ROOT

    url = f"http://127.0.0.1:{port}"
    server = Server(name=name, argv=argv, host="127.0.0.1", ports=[port], state_dir=state_dir,
                    health=lambda: httpx.get(f"{url}{ready_path}", timeout=2).status_code == 200,
                    hint=f"read {state_dir / (name + '.log')}", env=env or {}, cwd=cwd or REPO_ROOT,
                    start_timeout_s=start_timeout_s)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    return server, url


@dataclass
class Failure:
    code: str  # schemathesis failure code and type, e.g. "ST108 JsonSchemaError"
    title: str  # e.g. "Response violates schema"
    count: int  # unique failures of this kind
    operations: list[str]  # e.g. ["POST /recommend"]


@dataclass
class StResult:
    command: list[str]
    exit_code: int
    failures: list[Failure] = field(default_factory=list)
    unique_failures: int = 0
    errors: int = 0
    operations_tested: int = 0
    cases: int = 0
    output: str = ""  # the CLI's own report: each failing case with its response and a curl line

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.errors and self.operations_tested > 0

    def describe(self, limit: int = 6000) -> str:
        head = (f"{' '.join(self.command)}\n-> exit {self.exit_code}: {self.operations_tested} operations, "
                f"{self.cases} cases, {self.unique_failures} unique failures, {self.errors} errors")
        kinds = [f"  {f.code} x{f.count} {f.title}: {', '.join(f.operations)}" for f in self.failures]
        start = self.output.find("FAILURES")
        detail = self.output[start:start + limit] if start >= 0 else self.output[-limit:]
        return "\n".join([head, *kinds, detail])


def run_schemathesis(schema_url: str, report_dir: Path, *, max_examples: int = 150, seed: int = 1,
                     checks: str = "all", workers: int = 1, timeout_s: float = 1500,
                     extra: tuple[str, ...] = ()) -> StResult:
    """`st run schema_url --checks all`; the verdict from its JSON report (report_dir/st.json)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / "st.json"
    cmd = [ST, "run", schema_url, "--checks", checks, "--max-examples", str(max_examples), "--seed", str(seed),
           "--workers", str(workers), "--report", "json", "--report-json-path", str(report), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=report_dir,
                          env={"SCHEMATHESIS_TELEMETRY": "false", **_base_env()})
    output = proc.stdout + proc.stderr
    (report_dir / "st.out").write_text(output)
    result = StResult(command=["st", *cmd[1:]], exit_code=proc.returncode, output=output)
    if report.exists():
        _read_report(json.loads(report.read_text()), result)
    return result


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}


def _read_report(data: dict, result: StResult) -> None:
    """Counts and failure kinds from schemathesis's JSON run report (the 4.x layout: `operations`,
    `test_cases`, `failures` grouped by kind, `errors`)."""
    result.operations_tested = int((data.get("operations") or {}).get("tested", 0))
    cases = data.get("test_cases") or {}
    result.cases = int(cases.get("generated", 0))
    result.unique_failures = int(cases.get("unique_failures", 0))
    result.errors = len(data.get("errors") or [])
    result.failures = [Failure(code=f"{f.get('code')} {f.get('type')}", title=str(f.get("title")),
                               count=int(f.get("count", 1)), operations=list(f.get("operations") or []))
                       for f in data.get("failures") or []]
