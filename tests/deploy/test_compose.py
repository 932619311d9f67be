"""docker-compose.yml: valid against the Compose Specification schema, and
every port, topic and image in it comes from .env (the one settings source)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from minirec.infra.kafka import pom_version
from minirec.settings import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
# The Compose Specification schema as vendored by the check-jsonschema wheel (a dev
# dependency), with the sha256 it ships beside it: no file outside this repository.
VENDOR = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}")


def env_values() -> dict[str, str]:
    out = {}
    for line in (REPO_ROOT / ".env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def validate(schema: dict, doc: dict) -> None:
    """Validate with the draft the schema declares (2020-12 in check-jsonschema 0.39's copy)."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    cls(schema).validate(doc)


@pytest.fixture(scope="module")
def schema() -> dict:
    raw = (VENDOR / "compose-spec.json").read_bytes()
    shipped = (VENDOR / "sha256" / "compose-spec.sha256").read_text().split()[0]
    assert hashlib.sha256(raw).hexdigest() == shipped, "vendored compose-spec.json does not match its sha256"
    return json.loads(raw)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(text: str, values: dict[str, str]) -> str:
    text = text.replace("$$", "\0")
    text = VAR.sub(lambda m: values[m.group(1)], text)
    return text.replace("\0", "$")


def test_valid_against_compose_spec(schema, compose):
    validate(schema, compose)


def test_valid_after_interpolation(schema):
    rendered = yaml.safe_load(interpolate(COMPOSE.read_text(), env_values()))
    validate(schema, rendered)
    assert rendered["services"]["redis"]["ports"] == ["127.0.0.1:6379:6379"]


def test_broken_copy_fails(schema, compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["helthcheck"] = broken["services"]["redis"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        validate(schema, broken)
    wrong_type = copy.deepcopy(compose)
    wrong_type["services"]["kafka"]["depends_on"] = 42
    with pytest.raises(jsonschema.ValidationError):
        validate(schema, wrong_type)


def test_every_variable_is_defined_in_env():
    used = set(VAR.findall(COMPOSE.read_text()))
    missing = used - set(env_values())
    assert not missing, f"docker-compose.yml uses variables not in .env: {sorted(missing)}"


def test_env_keys_are_settings_fields():
    fields = {name.upper() for name in Settings.model_fields}
    compose_only = {"KAFKA_CLUSTER_ID", "AIRFLOW_DB_PASSWORD", "AIRFLOW_JWT_SECRET"}
    image_or_compose_only = {k for k in env_values() if k.endswith("_IMAGE") or k in compose_only}
    unknown = set(env_values()) - fields - image_or_compose_only
    assert not unknown, f".env keys that Settings does not read: {sorted(unknown)}"


def test_no_literal_ports_or_topics(compose):
    text = COMPOSE.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"(?<![\w.$-])(?:\d{4,5})(?![\w.])", body.replace("127.0.0.1", "")), \
        "a literal port number in docker-compose.yml; use a variable from .env"
    for service in compose["services"].values():
        for mapping in service.get("ports", []):
            host_ip, host_port, container_port = mapping.split(":")
            assert host_ip == "127.0.0.1"
            assert VAR.fullmatch(host_port) and host_port == container_port
    s = Settings()
    for topic in s.topics:
        assert not re.search(rf"\b{re.escape(topic)}\b", body), f"topic {topic!r} written literally"
    init = " ".join(compose["services"]["kafka-init"]["command"])
    for name in ("TOPIC_INTERACTIONS", "TOPIC_IMPRESSIONS", "TOPIC_EXPOSURES", "TOPIC_DEADLETTER"):
        assert f"${{{name}}}" in init


def test_healthchecks_and_dependencies(compose):
    services = compose["services"]
    for name in ("kafka", "redis", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_kafka_image_tag_matches_pinned_pom():
    tag = env_values()["KAFKA_IMAGE"].rsplit(":", 1)[1]
    assert tag == pom_version(), f"KAFKA_IMAGE tag {tag} differs from deploy/kafka/pom.xml {pom_version()}"


def test_settings_read_env_file():
    values = env_values()
    s = Settings()
    assert s.kafka_port == int(values["KAFKA_PORT"])
    assert s.redis_url == f"redis://{values['REDIS_HOST']}:{values['REDIS_PORT']}/0"
    assert s.topics[0] == values["TOPIC_INTERACTIONS"]


def test_environment_overrides_env_file(monkeypatch):
    monkeypatch.setenv("REDIS_PORT", "7777")
    assert Settings().redis_port == 7777
    monkeypatch.setenv("REDIS_PORT", "not-a-port")
    with pytest.raises(Exception, match="redis_port"):
        Settings()


def test_grafana_provisioning_points_at_prometheus(compose):
    ds = yaml.safe_load((REPO_ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "$PROMETHEUS_URL"
    assert compose["services"]["grafana"]["environment"]["PROMETHEUS_URL"] == "http://prometheus:${PROMETHEUS_PORT}"
    for path in Path(REPO_ROOT / "monitoring/grafana/dashboards").glob("*.json"):
        assert json.loads(path.read_text())["panels"], path.name


def test_compose_runs_each_app_with_the_native_entry_point(compose):
    """Every process `make stack` starts natively is a compose service of the same name running the
    same module with the same arguments (native: sys.executable, compose: the image's python)."""
    from minirec.infra import stack

    for app in stack.apps(Settings()):
        service = compose["services"].get(app.name)
        assert service is not None, f"{app.name}: no compose service"
        assert service["command"] == ["python", *app.argv[1:]], app.name
        assert service["image"] == "minirec-app:latest", app.name
        assert "healthcheck" in service, app.name


def test_the_mlflow_ui_runs_the_native_entry_point_on_the_shared_run_volume(compose):
    """`make mlflow` and the compose service run the same command; the store (run/mlflow) is in the
    volume the training jobs write to."""
    service = compose["services"]["mlflow"]
    target = re.search(r"^mlflow:.*\n\t@\$\(PY\) (.+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert target and service["command"] == ["python", *target.group(1).split()]
    assert service["image"] == "minirec-app:latest" and "healthcheck" in service
    assert service["environment"]["MLFLOW_HOST"] == "0.0.0.0"
    run_volume = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["model-init"]["volumes"]}
    assert "app-run:/opt/minirec/run" in service["volumes"] and run_volume["/opt/minirec/run"] == "app-run"
    assert env_values()["MLFLOW_TRACKING_URI"].startswith("sqlite:///run/")  # relative: inside that volume


def test_the_model_init_job_gates_the_services_that_need_a_model(compose):
    services = compose["services"]
    init = services["model-init"]
    assert init["restart"] == "no" and "python -m minirec.pipeline run" in " ".join(init["command"])
    for name in ("recommender", "stream", "drift", "explorer"):
        assert services[name]["depends_on"]["model-init"]["condition"] == "service_completed_successfully", name
    named = {v.split(":", 1)[0] for v in init["volumes"] if not v.startswith("./")}
    assert named and named <= set(compose["volumes"]), named  # state in named volumes the file declares


def test_optional_parts_sit_behind_profiles(compose):
    services = compose["services"]
    assert services["grafana"]["profiles"] == ["grafana"]  # its image cannot be built from Debian packages
    assert services["simulator"]["profiles"] == ["simulate"] and services["simulator"]["restart"] == "no"
    # the explorer and the simulator call the other services by their compose names, not the bind address
    for name in ("explorer", "simulator"):
        assert services[name]["environment"]["RECOMMENDER_HOST"] == "recommender", name


def test_app_services_pass_overridden_ports_through(compose):
    """env_file gives containers .env's literal values; a port overridden in the shell must reach the
    program too: every port an app service publishes or dials is set from ${VAR} in its environment."""
    for name, svc in compose["services"].items():
        if svc.get("image") != "minirec-app:latest":
            continue
        env = svc["environment"]
        published = {m.group(1) for p in svc.get("ports", []) for m in VAR.finditer(p)}
        for var in published | {"REDIS_PORT"}:
            assert env.get(var) == f"${{{var}}}", f"{name}: {var} not passed through ({env.get(var)!r})"
