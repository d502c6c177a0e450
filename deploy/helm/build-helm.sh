#!/usr/bin/env bash
# Builds a pinned helm v3 from the Go module proxy into a cache keyed by version (like
# deploy/local/build-bins.sh builds the Kubernetes binaries) and prints its path.
# Idempotent: an existing binary is not rebuilt.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE="${GRAFT_CACHE:-/var/cache/graft}"
HELM_BIN="$CACHE/helm-$HELM_VERSION/bin/helm"

if [[ ! -x "$HELM_BIN" ]]; then
  export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
  export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOMODCACHE="$CACHE/gomod"
  PATH="/usr/local/go/bin:$PATH"
  src="$CACHE/helm-$HELM_VERSION/src"
  mkdir -p "$src" "$(dirname "$HELM_BIN")"
  printf 'module local/helmbin\n\ngo 1.24.0\n\nrequire helm.sh/helm/v3 v%s\n' "$HELM_VERSION" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >"$src/tools.go"
  (
    cd "$src"
    go mod tidy >&2
    go build -p 2 -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
      -o "$HELM_BIN.tmp" helm.sh/helm/v3/cmd/helm >&2
    mv "$HELM_BIN.tmp" "$HELM_BIN"
  )
fi
echo "$HELM_BIN"
