#!/usr/bin/env bash
# Prints the plain manifests of graft (deploy/manifests/graft.yaml): the chart rendered with its
# default values for release `graft` in namespace graft-system, CRDs first, after the namespace.
#   deploy/helm/manifests.sh > deploy/manifests/graft.yaml     (what `make manifests` does)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELM="$("$HERE/build-helm.sh")"
cat <<'YAML'
# graft: plain manifests generated from deploy/helm/graft by `make manifests` (do not edit).
# kubectl apply --server-side -f deploy/manifests/graft.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: graft-system
YAML
"$HELM" template graft "$HERE/graft" --namespace graft-system --include-crds
