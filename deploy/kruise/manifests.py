#!/usr/bin/env python3
"""Manifest helpers for deploy/kruise/kruise (OpenKruise on the local cluster).

  split FILE DIR        split `kubectl kustomize config/default` output into DIR/crds.json,
                        DIR/webhooks.json and DIR/namespaces.json (kruise-system and kruise-daemon-config,
                        where the manager copies ImagePullJobs' pull secrets) as kubectl Lists;
                        the manager Deployment, RBAC and the daemon are left out (the manager runs
                        on the host with the admin kubeconfig)
  replacement LIVE WANT print WANT (a CRD) carrying LIVE's resourceVersion, for `kubectl replace`
  intermediate LIVE WANT
                        the same, plus (unserved) the versions LIVE has stored that WANT lacks
  same LIVE WANT        exit 0 when the two CRDs have the same spec, labels, annotations and
                        stored versions
"""
import json
import sys

import yaml

KEEP = {
    "CustomResourceDefinition": "crds",
    "MutatingWebhookConfiguration": "webhooks",
    "ValidatingWebhookConfiguration": "webhooks",
    "Namespace": "namespaces",
}


def as_list(items):
    return {"apiVersion": "v1", "kind": "List", "items": items}


def split(path, out):
    groups = {name: [] for name in set(KEEP.values())}
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") not in KEEP:
                continue
            groups[KEEP[doc["kind"]]].append(doc)
    for name, items in groups.items():
        with open(f"{out}/{name}.json", "w") as f:
            json.dump(as_list(items), f)
    print(" ".join(f"{len(v)} {k}" for k, v in sorted(groups.items())))


def load(path):
    with open(path) as f:
        return json.load(f)


def replacement(live_path, want_path):
    live, want = load(live_path), load(want_path)
    meta = want.setdefault("metadata", {})
    for k in ("uid", "creationTimestamp", "generation", "managedFields"):
        meta.pop(k, None)
    meta["resourceVersion"] = live["metadata"]["resourceVersion"]
    want.pop("status", None)
    json.dump(want, sys.stdout)


def intermediate(live_path, want_path):
    """WANT plus, unserved, each version LIVE has stored that WANT lacks (from LIVE's spec).

    The API server adds a CRD's new storage version to status.storedVersions as soon as the CRD
    is changed, and refuses a spec without every stored version: going back from OpenKruise's
    CRD (e.g. NodeImage stored as v1beta1) to graft's (v1alpha1 only) takes this step, then
    storedVersions set back, then WANT itself.
    """
    live, want = load(live_path), load(want_path)
    names = {v["name"] for v in want["spec"]["versions"]}
    for v in live["spec"]["versions"]:
        if v["name"] in live.get("status", {}).get("storedVersions", []) and v["name"] not in names:
            want["spec"]["versions"].append(dict(v, served=False, storage=False))
    json.dump(want, open(want_path + ".step", "w"))
    replacement(live_path, want_path + ".step")


def comparable(crd):
    meta = crd.get("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    stored = sorted(crd.get("status", {}).get("storedVersions") or [])
    return crd.get("spec"), meta.get("labels") or {}, annotations, stored


def same(live_path, want_path):
    sys.exit(0 if comparable(load(live_path)) == comparable(load(want_path)) else 1)


if __name__ == "__main__":
    commands = {"split": split, "replacement": replacement, "intermediate": intermediate, "same": same}
    if len(sys.argv) != 4 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2], sys.argv[3])
