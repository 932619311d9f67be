"""deploy/k8s: every manifest (base and each overlay's rendered output) is valid against the
Kubernetes schema of minirec.k8s.KUBERNETES_VERSION, and agrees with docker-compose.yml and .env:
images, commands, ports, probe paths, settings; the stream processor never outnumbers partitions."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from dotenv import dotenv_values

from minirec import k8s
from minirec.settings import REPO_ROOT

TARGETS = k8s.targets()
ENV = dotenv_values(REPO_ROOT / ".env")
PORT_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}$")
# ConfigMap keys whose value differs from .env on purpose: where the apps bind or what they dial
HOSTS = {"KAFKA_HOST", "REDIS_HOST", "RECOMMENDER_HOST", "ASSIGNMENT_HOST", "STREAM_METRICS_HOST",
         "DRIFT_METRICS_HOST", "EXPLORER_HOST"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module", params=TARGETS, ids=lambda p: str(p.relative_to(k8s.K8S_DIR)))
def rendered(request) -> list[dict]:
    return k8s.render(request.param)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(docs: list[dict]):
    for name, dep in by_kind(docs, "Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            yield name, c


def mebibytes(q: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(q[:-2]) * units[q[-2:]]


# --- schema validity ---------------------------------------------------------------------------

def test_every_manifest_validates(rendered):
    assert k8s.validate(rendered) == []
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds


def test_planted_errors_are_rejected(tmp_path):
    tree = tmp_path / "k8s"
    shutil.copytree(k8s.K8S_DIR, tree)
    rec = tree / "base" / "recommender.yaml"
    text = rec.read_text()
    # a misspelt field (strict schema) and a wrong type
    rec.write_text(text.replace("readinessProbe:", "readinesProbe:", 1).replace("replicas: 2", "replicas: two", 1))
    errors = k8s.validate(k8s.render(tree / "overlays" / "large"))
    assert any("readinesProbe" in e for e in errors), errors
    # an overlay 'replicas: two' is patched over by large's 4, so check the base alone for the type error
    assert any("Deployment/recommender: spec/replicas" in e for e in k8s.validate(k8s.render(tree / "base")))


def test_cli_exit_status(tmp_path, capsys):
    """`make k8s-validate` fails (exit 1, INVALID named) on a broken tree and passes on the real one."""
    assert k8s.main([]) == 0
    tree = tmp_path / "k8s"
    shutil.copytree(k8s.K8S_DIR, tree)
    svc = tree / "base" / "assignment.yaml"
    svc.write_text(svc.read_text().replace("containerPort: 3005", "containerPort: 3005x", 1))
    assert k8s.main([str(tree / "overlays" / "small")]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "Deployment/assignment" in out


def test_patch_matching_nothing_is_an_error(tmp_path):
    tree = tmp_path / "k8s"
    shutil.copytree(k8s.K8S_DIR, tree)
    patch = tree / "overlays" / "small" / "stream.yaml"
    patch.write_text(patch.read_text().replace("name: stream", "name: streem"))
    with pytest.raises(ValueError, match="streem"):
        k8s.render(tree / "overlays" / "small")


# --- overlays: the patches take effect and keep the rest of the base -----------------------------

@pytest.mark.skipif(shutil.which("kubectl") is None,
                    reason="no kubectl here (not a dependency: CI renders with minirec.k8s alone)")
@pytest.mark.parametrize("target", TARGETS, ids=lambda p: str(p.relative_to(k8s.K8S_DIR)))
def test_render_equals_kubectl_kustomize(target):
    """Where a kubectl is installed, its built-in kustomize renders exactly what minirec.k8s renders."""
    out = subprocess.run(["kubectl", "kustomize", str(target)], capture_output=True, text=True, check=True).stdout
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    mine = {(d["kind"], d["metadata"]["name"]): d for d in k8s.render(target)}
    assert mine == theirs


def test_merge_by_name_keeps_base_fields():
    base = {"spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}},
                                    {"name": "b", "image": "y"}], "replicas": 2}}
    patch = {"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}], "replicas": 4}}
    out = k8s.merge(base, patch)
    assert out["spec"]["replicas"] == 4
    assert out["spec"]["containers"][0] == {"name": "a", "image": "x",
                                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    assert out["spec"]["containers"][1] == {"name": "b", "image": "y"}
    assert base["spec"]["replicas"] == 2  # the base is not modified


def test_overlays_set_sizes():
    base, small, large = (k8s.render(k8s.K8S_DIR / p) for p in ("base", "overlays/small", "overlays/large"))
    rec = {n: by_kind(d, "Deployment")["recommender"] for n, d in
           (("base", base), ("small", small), ("large", large))}
    hpa = {n: by_kind(d, "HorizontalPodAutoscaler")["recommender"]["spec"] for n, d in
           (("small", small), ("large", large))}
    assert rec["small"]["spec"]["replicas"] == 1 and (hpa["small"]["minReplicas"], hpa["small"]["maxReplicas"]) == (1, 3)
    assert rec["large"]["spec"]["replicas"] == 4 and (hpa["large"]["minReplicas"], hpa["large"]["maxReplicas"]) == (4, 16)
    big = rec["large"]["spec"]["template"]["spec"]["containers"][0]
    assert big["resources"]["limits"]["memory"] == "2560Mi"
    # what large did not patch is the base's
    base_c = rec["base"]["spec"]["template"]["spec"]["containers"][0]
    for key in ("image", "command", "ports", "readinessProbe", "livenessProbe", "volumeMounts"):
        assert big[key] == base_c[key]
    assert by_kind(large, "Deployment")["stream"]["spec"]["replicas"] == 3


# --- agreement with docker-compose.yml and .env ------------------------------------------------

def test_images_and_commands_match_compose(rendered, compose):
    for name, c in containers(rendered):
        svc = compose["services"][name]  # each Deployment is a compose service of the same name
        assert c["image"] == svc["image"], name
        assert c["command"] == svc["command"], name


def test_ports_match_env(rendered, compose):
    services = by_kind(rendered, "Service")
    for name, c in containers(rendered):
        published = compose["services"][name]["ports"][0].rsplit(":", 1)[1]
        expected = int(ENV[PORT_VAR.match(published).group(1)])
        assert [p["containerPort"] for p in c["ports"]] == [expected], name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in c:
                assert c[probe]["httpGet"]["port"] == expected, (name, probe)
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [expected], name
        assert services[name]["spec"]["selector"].items() <= \
            by_kind(rendered, "Deployment")[name]["spec"]["template"]["metadata"]["labels"].items()


def test_recommender_readiness_is_its_readiness_route(rendered, compose):
    c = dict(containers(rendered))["recommender"]
    path = c["readinessProbe"]["httpGet"]["path"]
    # the route services/recommender answers 200/503 on (model loaded or not), and compose's healthcheck
    assert f'if path == "{path}" and ENGINE is not None' in (REPO_ROOT / "services/recommender/service.py").read_text()
    assert f"{path}'" in " ".join(compose["services"]["recommender"]["healthcheck"]["test"])
    assert "livenessProbe" in c
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["recommender"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "recommender"
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_stream_replicas_at_most_partitions(rendered):
    assert by_kind(rendered, "Deployment")["stream"]["spec"]["replicas"] <= int(ENV["KAFKA_PARTITIONS"])
    assert "HorizontalPodAutoscaler" not in {d["kind"] for d in rendered if d["metadata"]["name"] == "stream"}


def test_configmap_carries_env(rendered):
    data = by_kind(rendered, "ConfigMap")["minirec-settings"]["data"]
    for key, value in data.items():
        assert key in ENV, key
        if key not in HOSTS:
            assert value == ENV[key], key
    for key in ("KAFKA_PORT", "REDIS_PORT", "KAFKA_PARTITIONS", "TOPIC_INTERACTIONS", "RECOMMENDER_PORT"):
        assert key in data
    external = {n for n, s in by_kind(rendered, "Service").items() if s["spec"].get("type") == "ExternalName"}
    assert {data["KAFKA_HOST"], data["REDIS_HOST"]} == external == {"kafka", "redis"}
    services = set(by_kind(rendered, "Service"))
    for name, c in containers(rendered):
        assert {"configMapRef": {"name": "minirec-settings"}} in c["envFrom"], name
        for e in c.get("env", []):
            if e["name"].endswith("_HOST"):  # a per-pod override dials another Service by name
                assert e["value"] in services, (name, e)


def test_every_container_has_requests_and_limits(rendered):
    for name, c in containers(rendered):
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert mebibytes(req["memory"]) <= mebibytes(lim["memory"]), name
        assert "cpu" in req and "cpu" in lim, name
