"""Checks the two API-server files that have no OpenAPI schema (so
kubernetes-validate cannot): an audit.k8s.io/v1 Policy and a kubeconfig, each
against the fields the API server reads. Unknown keys are errors, as in
strict validation. Usage: check_audit_files.py POLICY KUBECONFIG"""

import sys

import yaml

LEVELS = {"None", "Metadata", "Request", "RequestResponse"}
STAGES = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
RULE_KEYS = {"level", "users", "userGroups", "verbs", "resources", "namespaces",
             "nonResourceURLs", "omitStages", "omitManagedFields"}
GROUP_KEYS = {"group", "resources", "resourceNames"}


def fail(path, msg):
    sys.exit(f"{path}: {msg}")


def strings(path, where, value):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(path, f"{where}: must be a list of strings")


def check_policy(path):
    doc = yaml.safe_load(open(path))
    if doc.get("apiVersion") != "audit.k8s.io/v1" or doc.get("kind") != "Policy":
        fail(path, "must be apiVersion audit.k8s.io/v1, kind Policy")
    extra = set(doc) - {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
    if extra:
        fail(path, f"unknown keys {sorted(extra)}")
    for s in doc.get("omitStages", []):
        if s not in STAGES:
            fail(path, f"omitStages: unknown stage {s!r}")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        fail(path, "rules: at least one rule is required")
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        extra = set(rule) - RULE_KEYS
        if extra:
            fail(path, f"{where}: unknown keys {sorted(extra)}")
        if rule.get("level") not in LEVELS:
            fail(path, f"{where}.level: must be one of {sorted(LEVELS)}")
        for key in ("users", "userGroups", "verbs", "namespaces", "nonResourceURLs", "omitStages"):
            if key in rule:
                strings(path, f"{where}.{key}", rule[key])
        if "resources" in rule and "nonResourceURLs" in rule:
            fail(path, f"{where}: resources and nonResourceURLs are exclusive")
        for j, group in enumerate(rule.get("resources", [])):
            extra = set(group) - GROUP_KEYS
            if extra:
                fail(path, f"{where}.resources[{j}]: unknown keys {sorted(extra)}")
            strings(path, f"{where}.resources[{j}].resources", group.get("resources", []))
    # The last rule decides everything the others did not match.
    if set(rules[-1]) != {"level"}:
        fail(path, "the last rule should be a catch-all (level only)")


def check_kubeconfig(path):
    doc = yaml.safe_load(open(path))
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Config":
        fail(path, "must be apiVersion v1, kind Config")
    names = {}
    for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        items = doc.get(section)
        if not isinstance(items, list) or not items:
            fail(path, f"{section}: at least one entry is required")
        names[section] = {item["name"] for item in items}
        for item in items:
            if set(item) != {"name", inner}:
                fail(path, f"{section}[{item.get('name')}]: needs exactly name and {inner}")
    for c in doc["clusters"]:
        cluster = c["cluster"]
        if not str(cluster.get("server", "")).startswith("https://"):
            fail(path, "clusters: the audit webhook must be HTTPS (the token travels with each batch)")
        if not ({"certificate-authority", "certificate-authority-data"} & set(cluster)):
            fail(path, "clusters: a certificate-authority is required")
    for u in doc["users"]:
        if not ({"token", "tokenFile"} & set(u["user"])):
            fail(path, "users: a token or tokenFile is required (Vigil requires a bearer token off loopback)")
    for ctx in doc["contexts"]:
        c = ctx["context"]
        if c.get("cluster") not in names["clusters"] or c.get("user") not in names["users"]:
            fail(path, f"contexts[{ctx['name']}]: names an unknown cluster or user")
    if doc.get("current-context") not in names["contexts"]:
        fail(path, "current-context: must name one of the contexts")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    check_policy(sys.argv[1])
    check_kubeconfig(sys.argv[2])
