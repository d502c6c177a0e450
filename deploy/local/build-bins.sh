#!/usr/bin/env bash
# Builds etcd and the Kubernetes binaries from the Go module proxy into a cache keyed by version.
# Idempotent: a version whose binaries are all present is not rebuilt.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE="${GRAFT_CACHE:-/var/cache/graft}"
K8S_BIN="$CACHE/k8s-$K8S_VERSION/bin"
ETCD_BIN="$CACHE/etcd-$ETCD_VERSION/bin"

export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOMODCACHE="$CACHE/gomod"
PATH="/usr/local/go/bin:$PATH"

K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

build_etcd() {
  [[ -x "$ETCD_BIN/etcd" ]] && return 0
  local src="$CACHE/etcd-$ETCD_VERSION/src"
  mkdir -p "$src" "$ETCD_BIN"
  printf 'module local/etcdbin\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >"$src/go.mod"
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && go mod tidy && go build -trimpath -ldflags '-s -w' -o "$ETCD_BIN/etcd.tmp" . && mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd")
}

build_k8s() {
  local missing=0 c
  for c in "${K8S_CMDS[@]}"; do [[ -x "$K8S_BIN/$c" ]] || missing=1; done
  [[ $missing == 0 ]] && return 0
  local src="$CACHE/k8s-$K8S_VERSION/src"
  mkdir -p "$src" "$K8S_BIN"
  {
    printf 'module local/k8sbins\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    for m in "${STAGING[@]}"; do printf '\tk8s.io/%s => k8s.io/%s v0.%s\n' "$m" "$m" "${K8S_VERSION#1.}"; done
    printf ')\n'
  } >"$src/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${K8S_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$src/tools.go"
  local ldf="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=${K8S_VERSION#1.} -X $p.gitTreeState=clean"
    ldf+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  ldf="${ldf//gitMinor=${K8S_VERSION#1.}/gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")}"
  (
    cd "$src"
    go mod tidy
    local pkgs=()
    for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go build -p 2 -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ldf" -o "$K8S_BIN/" "${pkgs[@]}"
  )
}

t0=$(date +%s)
build_etcd
echo "etcd $ETCD_VERSION ready in $(( $(date +%s) - t0 ))s: $ETCD_BIN/etcd"
t1=$(date +%s)
build_k8s
echo "kubernetes $K8S_VERSION ready in $(( $(date +%s) - t1 ))s: $K8S_BIN"
"$K8S_BIN/kube-apiserver" --version
