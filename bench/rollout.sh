#!/usr/bin/env bash
# Whole-system rollout benchmark (issue 4), on the local cluster from deploy/local.
#
# The same image change (app:v1 -> app:v2) on N pods with maxUnavailable 20%, as
#   (a) a CloneSet with InPlaceIfPossible, (b) a CloneSet with ReCreate, (c) a Deployment with
#   RollingUpdate (maxSurge 0), the baseline,
# each in a fresh namespace, measured from the spec change until all N pods are updated and ready.
# Prints each duration, its ratio to the Deployment, and the peak RSS (VmHWM) of the
# `graft controllers` process that ran each CloneSet. Figures are printed, never asserted.
#
# Usage: bench/rollout.sh        (env: N=30, GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
N="${N:-30}"
eval "$(deploy/local/cluster env)"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

APP_V1="$REGISTRY/graft-test/app:v1"
APP_V2="$REGISTRY/graft-test/app:v2"
RUN="$(date +%s)-$$"
LOGDIR="/tmp/graft-bench-$RUN"
mkdir -p "$LOGDIR"
NAMESPACES=()
GRAFT_PID=""

cleanup() {
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null || true; fi
  for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

now() { date +%s.%N; }

# Create graft-bench-<what>-<run> and set NS to it (not in a subshell: cleanup needs the list).
new_namespace() {
  NS="graft-bench-$1-$RUN"
  kubectl create namespace "$NS" >/dev/null
  kubectl label namespace "$NS" graft.dev/test=true >/dev/null
  NAMESPACES+=("$NS")
  # Pods are rejected until the default service account exists.
  until kubectl -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
}

# The pod template: one tiny container (the node has 2 cores shared with everything else).
template() {
  cat <<EOF
    metadata:
      labels: {app: bench}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
        - name: app
          image: $1
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
EOF
}

cloneset() { # name strategy-type
  cat <<EOF
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: $1}
spec:
  replicas: $N
  selector: {matchLabels: {app: bench}}
  updateStrategy: {type: $2, maxUnavailable: "20%"}
  template:
$(template "$APP_V1")
EOF
}

deployment() {
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $N
  selector: {matchLabels: {app: bench}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: "20%", maxSurge: 0}}
  template:
$(template "$APP_V1")
EOF
}

# Wait until the workload has exactly N pods, all at the current generation's template and ready.
# Both kinds report observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas.
wait_rolled_out() { # kind name namespace timeout-seconds
  local deadline=$(( $(date +%s) + $4 )) got
  local fields='{.metadata.generation} {.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} {.status.readyReplicas} {.status.availableReplicas}'
  while :; do
    got="$(kubectl -n "$3" get "$1" "$2" -o jsonpath="$fields" 2>/dev/null || true)"
    read -r gen observed replicas updated ready available <<<"$got"
    if [[ -n "${available:-}" && "$gen" == "$observed" && "$replicas" == "$N" && "$updated" == "$N" \
          && "$ready" == "$N" && "$available" == "$N" ]]; then
      return 0
    fi
    if (( $(date +%s) > deadline )); then
      echo "timed out waiting for $1/$2 in $3: generation observed replicas updated ready available = $got" >&2
      return 1
    fi
    sleep 0.25
  done
}

# Make sure both images are on the node so no case pays a pull the others do not.
prepull() {
  new_namespace prepull
  local ns="$NS"
  for img in "$APP_V1" "$APP_V2"; do
    kubectl -n "$ns" run "pull-$(basename "${img##*:}")" --image="$img" --image-pull-policy=IfNotPresent \
      --restart=Never --overrides='{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
  done
  kubectl -n "$ns" wait pod --all --for=condition=Ready --timeout=180s >/dev/null
  kubectl delete namespace "$ns" --wait=true >/dev/null
}

start_graft() { # namespace
  "$GRAFT" controllers --namespace "$1" --metrics-addr 127.0.0.1:0 >"$LOGDIR/controllers-$1.log" 2>&1 &
  GRAFT_PID=$!
}

stop_graft() {
  kill "$GRAFT_PID" 2>/dev/null || true
  wait "$GRAFT_PID" 2>/dev/null || true
  GRAFT_PID=""
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

declare -A SECONDS_OF RSS_OF

run_case() { # key kind [cloneset update strategy type]
  local key="$1" kind="$2" ns name=bench
  new_namespace "$key"
  ns="$NS"
  if [[ "$kind" == cloneset ]]; then
    start_graft "$ns"
    cloneset "$name" "$3" | kubectl -n "$ns" apply -f - >/dev/null
  else
    deployment "$name" | kubectl -n "$ns" apply -f - >/dev/null
  fi
  wait_rolled_out "$kind" "$name" "$ns" 300
  local t0 t1
  t0="$(now)"
  kubectl -n "$ns" patch "$kind" "$name" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"$APP_V2\"}]" >/dev/null
  wait_rolled_out "$kind" "$name" "$ns" 600
  t1="$(now)"
  SECONDS_OF[$key]="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')"
  if [[ "$kind" == cloneset ]]; then
    RSS_OF[$key]="$(peak_rss_kib "$GRAFT_PID")"
    stop_graft
  fi
  kubectl delete namespace "$ns" --wait=true >/dev/null
  echo "  $key: ${SECONDS_OF[$key]} s" >&2
}

echo "rollout benchmark: $N pods, app:v1 -> app:v2, maxUnavailable 20% (graft: $GRAFT)" >&2
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/clonesets.apps.kruise.io --timeout=60s >/dev/null
prepull
run_case inplace cloneset InPlaceIfPossible
run_case recreate cloneset ReCreate
run_case deployment deployment

base="${SECONDS_OF[deployment]}"
ratio() { awk -v a="$1" -v b="$base" 'BEGIN {printf "%.2f", a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
echo
printf '%-30s %10s %14s %22s\n' "rollout ($N pods)" "seconds" "vs Deployment" "graft peak RSS (VmHWM)"
printf '%-30s %10s %14s %22s\n' "CloneSet InPlaceIfPossible" "${SECONDS_OF[inplace]}" "$(ratio "${SECONDS_OF[inplace]}")x" "$(mib "${RSS_OF[inplace]}")"
printf '%-30s %10s %14s %22s\n' "CloneSet ReCreate" "${SECONDS_OF[recreate]}" "$(ratio "${SECONDS_OF[recreate]}")x" "$(mib "${RSS_OF[recreate]}")"
printf '%-30s %10s %14s %22s\n' "Deployment RollingUpdate" "$base" "1.00x" "-"
echo "(controller logs: $LOGDIR)"
