"""Metric names in PromQL and in Prometheus text pages (dashboards and alert rules vs live scrapes).

    used_names(exprs, prefixes)  identifiers in PromQL expressions that start with one of the prefixes
    scraped_names(text)          names a /metrics page declares: sample names, and the families of its
                                 `# TYPE` lines (a labelled counter with no child yet has no sample line)
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def used_names(exprs: Iterable[str], prefixes: Iterable[str]) -> set[str]:
    alternatives = "|".join(map(re.escape, prefixes))
    pat = re.compile(rf"\b((?:{alternatives})[a-zA-Z0-9_:]*)")
    return {n for e in exprs for n in pat.findall(e)}


def scraped_names(text: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            out.add(name)
            if kind == "counter" and not name.endswith("_total"):
                out.add(name + "_total")
        elif line and not line.startswith("#"):
            out.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return out


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard.get("panels", []) for t in p.get("targets", []) if t.get("expr")]


def rule_exprs(rules: dict, group: str | None = None) -> list[str]:
    return [r["expr"] for g in rules["groups"] if group in (None, g["name"]) for r in g["rules"]]
