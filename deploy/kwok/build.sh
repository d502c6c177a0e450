#!/usr/bin/env bash
# Builds kwok (sigs.k8s.io/kwok's cmd/kwok: simulated nodes and pods for the scale benchmark,
# bench/scale.sh) from the Go module proxy into a cache keyed by version, as deploy/kruise/build.sh
# builds OpenKruise, and prints the path of the binary. Its stage manifests (kustomize/stage, the
# fast node and pod life cycles) are kept next to it in src/.
# Idempotent: a version whose binary is present is not rebuilt.
#
# The module's own go.mod is the main module (as for OpenKruise: its replace directives count only
# there), so its source is copied out of the module cache and built there.
# Progress goes to stderr; the Go tool's output goes to $KWOK_DIR/build.log.
#
# Usage: deploy/kwok/build.sh    (env: KWOK_VERSION=0.8.0, GRAFT_CACHE=/var/cache/graft)
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
CACHE="${GRAFT_CACHE:-/var/cache/graft}"
KWOK_DIR="$CACHE/kwok-$KWOK_VERSION"
BIN="$KWOK_DIR/bin"
SRC="$KWOK_DIR/src"
LOG="$KWOK_DIR/build.log"
MODULE=sigs.k8s.io/kwok

if [[ -x "$BIN/kwok" && -f "$SRC/go.mod" ]]; then
  echo "$BIN/kwok"
  exit 0
fi

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOMODCACHE="$CACHE/gomod"
PATH="/usr/local/go/bin:$PATH"
mkdir -p "$BIN"
: >"$LOG"
step() { echo "kwok $KWOK_VERSION: $*" >&2; }
fail() { echo "kwok $KWOK_VERSION: $* failed; the Go tool's output is in $LOG" >&2; tail -n 20 "$LOG" >&2; exit 1; }

t0=$(date +%s)
if [[ ! -f "$SRC/go.mod" ]]; then
  step "downloading $MODULE@v$KWOK_VERSION from the module proxy (${GOPROXY:-$(go env GOPROXY)})"
  dir="$(cd /tmp && go mod download -json "$MODULE@v$KWOK_VERSION" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || fail "go mod download"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || fail "go mod download (no module directory)"
  rm -rf "$SRC.tmp"
  cp -r "$dir" "$SRC.tmp"
  chmod -R u+w "$SRC.tmp"
  mv "$SRC.tmp" "$SRC"
fi

step "building kwok (2 jobs, niced; a few minutes on a cold cache)"
(cd "$SRC" && nice -n 10 go build -p 2 -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" -o "$BIN/kwok.tmp" ./cmd/kwok) >>"$LOG" 2>&1 \
  || fail "building kwok"
mv "$BIN/kwok.tmp" "$BIN/kwok"
step "ready in $(( $(date +%s) - t0 ))s: $BIN/kwok (build log: $LOG)"
echo "$BIN/kwok"
