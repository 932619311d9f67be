"""Offline checks of the Kubernetes manifests in deploy/k8s (`make k8s-validate`).

No kubectl or kustomize binary is needed: `render` builds what `kubectl apply -k <dir>` would apply
for the layout used here (a kustomization's `resources` files and folders, its `namespace`, and
plain strategic-merge `patches`), and `validate` checks every resource against the Kubernetes JSON
schema of KUBERNETES_VERSION shipped by the `kubernetes-validate` package (strict: unknown fields
are errors too).

The merge is the subset of strategic merge patch these overlays use: maps merge key by key, a list
of maps that all carry `name` (containers, env) merges item by item on `name`, any other list or
value is replaced. A patch that matches no resource (kind + metadata.name) is an error, as in
kustomize.

    python -m minirec.k8s [--version 1.33.0] [DIR ...]   (default: deploy/k8s/base + each overlay)
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

from minirec.settings import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
# the cluster version the manifests are written for (autoscaling/v2 is GA since 1.23)
KUBERNETES_VERSION = "1.33.0"


def load_docs(path: Path) -> list[dict]:
    """Every YAML document of a file (empty documents skipped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def targets() -> list[Path]:
    """The base and every overlay folder: what `make k8s-validate` checks."""
    return [K8S_DIR / "base", *sorted(p for p in (K8S_DIR / "overlays").iterdir() if p.is_dir())]


def merge(base, patch):
    """Strategic merge of `patch` into a copy of `base` (the subset described in the module doc)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = merge(out[k], v) if k in out else copy.deepcopy(v)
        return out
    if _named(base) and _named(patch):
        out = [copy.deepcopy(b) for b in base]
        index = {b["name"]: i for i, b in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _named(x) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(i, dict) and "name" in i for i in x)


def _key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def render(folder: Path) -> list[dict]:
    """The resources `kubectl apply -k folder` would apply (for the layout described above)."""
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for entry in kust.get("resources", []):
        path = (folder / entry).resolve()
        docs.extend(render(path) if path.is_dir() else load_docs(path))
    for entry in kust.get("patches", []):
        for patch in load_docs(folder / entry["path"]):
            hits = [i for i, d in enumerate(docs) if _key(d) == _key(patch)]
            if not hits:
                raise ValueError(f"{folder / entry['path']}: patch {_key(patch)} matches no resource")
            docs[hits[0]] = merge(docs[hits[0]], patch)
    if "namespace" in kust:
        for d in docs:
            if d["kind"] != "Namespace":
                d["metadata"]["namespace"] = kust["namespace"]
    return docs


def validate(docs: list[dict], version: str = KUBERNETES_VERSION) -> list[str]:
    """One message per resource that fails the schema of `version` (empty list: all valid)."""
    from kubernetes_validate import utils  # loads the schemas: only when validating

    errors = []
    for d in docs:
        try:
            utils.validate(d, version, strict=True)
        except (utils.ValidationError, utils.SchemaNotFoundError) as e:
            where = "/".join(str(p) for p in getattr(e, "path", []))
            errors.append(f"{d.get('kind')}/{d.get('metadata', {}).get('name')}: {where}: {e.message}")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minirec.k8s", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path, help="kustomization folders (default: base and each overlay)")
    ap.add_argument("--version", default=KUBERNETES_VERSION, help="Kubernetes schema version")
    a = ap.parse_args(argv)
    failed = False
    for folder in a.dirs or targets():
        errors = validate(docs := render(folder), a.version)
        failed |= bool(errors)
        full = folder.resolve()
        name = full.relative_to(K8S_DIR) if full.is_relative_to(K8S_DIR) else folder
        print(f"{name}: {len(docs)} resources, {'INVALID' if errors else 'valid'} (Kubernetes {a.version}, strict)")
        for msg in errors:
            print(f"  {msg}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
