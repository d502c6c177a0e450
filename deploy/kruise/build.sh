#!/usr/bin/env bash
# Builds OpenKruise's kruise-manager (the module root's main.go) and kruise-daemon (cmd/daemon)
# from the Go module proxy into a cache keyed by version, as deploy/local/build-bins.sh builds the
# Kubernetes binaries, and prints the directory that holds them.
# Idempotent: a version whose two binaries are present is not rebuilt.
#
# The module's own go.mod is the main module (it pins k8s.io/* with replace directives, which a
# wrapper module would ignore), so its source is copied out of the module cache and built there.
# Progress goes to stderr; the Go tool's output goes to $KRUISE_DIR/build.log.
#
# Usage: deploy/kruise/build.sh    (env: KRUISE_VERSION=1.9.1, GRAFT_CACHE=/var/cache/graft)
set -euo pipefail

KRUISE_VERSION="${KRUISE_VERSION:-1.9.1}"
CACHE="${GRAFT_CACHE:-/var/cache/graft}"
KRUISE_DIR="$CACHE/kruise-$KRUISE_VERSION"
BIN="$KRUISE_DIR/bin"
SRC="$KRUISE_DIR/src"
LOG="$KRUISE_DIR/build.log"
MODULE=github.com/openkruise/kruise

if [[ -x "$BIN/kruise-manager" && -x "$BIN/kruise-daemon" && -f "$SRC/go.mod" ]]; then
  echo "$BIN"
  exit 0
fi

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOMODCACHE="$CACHE/gomod"
PATH="/usr/local/go/bin:$PATH"
mkdir -p "$BIN"
: >"$LOG"
step() { echo "kruise $KRUISE_VERSION: $*" >&2; }
fail() { echo "kruise $KRUISE_VERSION: $* failed; the Go tool's output is in $LOG" >&2; tail -n 20 "$LOG" >&2; exit 1; }

t0=$(date +%s)
if [[ ! -f "$SRC/go.mod" ]]; then
  step "downloading $MODULE@v$KRUISE_VERSION from the module proxy (${GOPROXY:-$(go env GOPROXY)})"
  dir="$(cd /tmp && go mod download -json "$MODULE@v$KRUISE_VERSION" 2>>"$LOG" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || fail "go mod download"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || fail "go mod download (no module directory)"
  rm -rf "$SRC.tmp"
  cp -r "$dir" "$SRC.tmp"
  chmod -R u+w "$SRC.tmp"
  mv "$SRC.tmp" "$SRC"
fi

build() { # binary-name package
  [[ -x "$BIN/$1" ]] && return 0
  step "building $1 (2 jobs, niced; several minutes on a cold cache)"
  local t=$(date +%s)
  (cd "$SRC" && nice -n 10 go build -p 2 -trimpath -ldflags '-s -w' -o "$BIN/$1.tmp" "$2") >>"$LOG" 2>&1 \
    || fail "building $1"
  mv "$BIN/$1.tmp" "$BIN/$1"
  step "$1 built in $(( $(date +%s) - t ))s"
}
build kruise-manager .
build kruise-daemon ./cmd/daemon
step "ready in $(( $(date +%s) - t0 ))s: $BIN (build log: $LOG)"
echo "$BIN"
