"""deploy/images/app/Dockerfile holds what every compose service on the app image runs:
each entry point (`python -m pkg.module`, Airflow's DAG folder), the first-party packages
those import, and the Feast repo the training reads; .dockerignore keeps the build context
to source. Statically: the files the Dockerfile COPYs are compared with compose's commands."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from minirec.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "deploy/images/app/Dockerfile"
APP_IMAGE = "minirec-app:latest"
WORKDIR = "/opt/minirec"
PY_MODULE = re.compile(r"\bpython -m ([A-Za-z_][\w.]*)")
FIRST_PARTY = {"minirec", "services", "monitoring", "pipelines", "feature_repo", "loadtests"}


def copied(dockerfile: str) -> set[str]:
    """Top-level repo paths the Dockerfile COPYs into WORKDIR (`COPY a/ b c ./` -> {a, b, c})."""
    out: set[str] = set()
    for line in dockerfile.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            out |= {p.rstrip("/") for p in parts[1:-1]}
    return out


def app_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == APP_IMAGE}


def entry_modules(service: dict) -> list[str]:
    """Modules a service runs with `python -m`, from its command (list or shell string)."""
    cmd = service.get("command", [])
    return PY_MODULE.findall(" ".join(cmd) if isinstance(cmd, list) else cmd)


def module_path(module: str, root: Path = REPO_ROOT) -> Path | None:
    base = root.joinpath(*module.split("."))
    for cand in (base / "__main__.py", base.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def first_party_imports(package_dir: Path) -> set[str]:
    """Top-level first-party packages imported anywhere under `package_dir` (static, via ast)."""
    found: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            found |= {n.split(".")[0] for n in names} & FIRST_PARTY
    return found


def needed_paths(compose: dict) -> dict[str, set[str]]:
    """Service -> top-level repo paths its entry points need inside the image."""
    need: dict[str, set[str]] = {}
    for name, svc in app_services(compose).items():
        paths: set[str] = set()
        for module in entry_modules(svc):
            assert module_path(module) is not None, f"{name}: `python -m {module}` has no module in the repo"
            paths.add(module.split(".")[0])
        dags = (svc.get("environment") or {}).get("AIRFLOW__CORE__DAGS_FOLDER")
        if dags:
            paths.add(Path(dags).relative_to(WORKDIR).parts[0])
        if name == "model-init":
            paths.add("feature_repo")  # `minirec.pipeline run` applies and materialises the Feast repo
        todo = list(paths)
        while todo:  # close over first-party imports: services.* imports minirec, ...
            for dep in first_party_imports(REPO_ROOT / todo.pop()) - paths:
                paths.add(dep)
                todo.append(dep)
        need[name] = paths
    return need


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_every_app_service_entry_point_is_in_the_image(compose):
    have = copied(DOCKERFILE.read_text())
    need = needed_paths(compose)
    # the services this image must carry, so the walk above really covered them
    assert {"model-init", "recommender", "stream", "assignment", "drift", "explorer", "simulator",
            "airflow-scheduler"} <= set(need), sorted(need)
    for name, paths in need.items():
        assert paths and paths <= have, f"{name} needs {sorted(paths - have)} not COPYd by {DOCKERFILE.name}"


def test_a_missing_copy_is_caught(compose):
    text = DOCKERFILE.read_text()
    assert "COPY monitoring/ monitoring/" in text
    have = copied(text.replace("COPY monitoring/ monitoring/\n", ""))
    need = needed_paths(compose)
    assert "monitoring" in need["drift"] and not need["drift"] <= have
    assert need["recommender"] >= {"services", "minirec"}  # found through the import walk


def test_entry_modules_parse_list_and_shell_commands():
    assert entry_modules({"command": ["python", "-m", "services.stream"]}) == ["services.stream"]
    assert entry_modules({"command": ["sh -c 'python -m minirec.cli data && python -m minirec.pipeline run'"]}) \
        == ["minirec.cli", "minirec.pipeline"]
    assert module_path("services.nope") is None


def test_build_context_leaves_out_the_environment_and_state():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "data", "run", "artifacts", ".git"} <= ignored
    # and nothing the image COPYs is ignored
    assert not copied(DOCKERFILE.read_text()) & ignored
