#!/usr/bin/env bash
# A rollout of pods that look like real ones (issue 13, "A benchmark that represents real pods"),
# on the local cluster from deploy/local, one run. Each pod has
#   - an app container that starts serving ~3 s after it starts (`sleep 3; exec /app`; its
#     readinessProbe on /readyz fails until then), image app:v1 -> app:v2;
#   - a sidecar container that does not change (sidecar:v1, its own readinessProbe);
#   - its own PersistentVolumeClaim, mounted by the app, from the cluster's default StorageClass
#     (deploy/local: "standard", the controller-manager's hostPath provisioner, Immediate binding).
# Rollouts of N=30 pods, maxUnavailable 20%, each timed from the spec change until all N pods are
# updated and ready (bench/lib/rollout.sh):
#   graft CloneSet InPlaceIfPossible, graft CloneSet ReCreate (volumeClaimTemplates: a pod's claim
#   is kept for its replacement), a Deployment (RollingUpdate, maxSurge 0) whose pods each get a
#   claim of their own as a generic ephemeral volume (the only per-pod claim a Deployment has: it
#   goes with the pod, so every new pod waits for a new volume), and for reference the same
#   Deployment with one claim all its pods share (what a Deployment with a volume usually does);
#   then OpenKruise v1.9.1 installed (deploy/kruise/kruise, in this benchmark's turn on the cluster:
#   bench/lib/exclusive.sh) for the same CloneSet InPlaceIfPossible, and removed again.
# Prints the table with each rollout's ratio to the per-pod-claim Deployment and the per-pod
# breakdown of both in-place rollouts (bench/lib/podwatch.py). Figures are printed, never asserted.
# Tool output (OpenKruise's install and removal) goes to the log whose path is printed.
#
# Usage: bench/realistic.sh    (env: N=30, GRAFT=<graft binary>, default the release build;
#                               KRUISE=0 skips OpenKruise; KRUISE_VERSION=1.9.1)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
source bench/lib/rollout.sh
source bench/lib/exclusive.sh
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }
KRUISE="${KRUISE:-1}"
KRUISE_VERSION="${KRUISE_VERSION:-1.9.1}"
SIDECAR="$REGISTRY/graft-test/sidecar:v1"
ROOT="/tmp/graft-bench-realistic-$RUN"
LOG="$ROOT/bench.log"
mkdir -p "$ROOT/graft" "$ROOT/kruise"
: >"$LOG"
GRAFT_PID=""
INSTALLED=0

cleanup() {
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null || true; fi
  rollout_cleanup
  if (( INSTALLED )); then deploy/kruise/kruise down >>"$LOG" 2>&1 || echo "OpenKruise removal failed: see $LOG" >&2; fi
  exclusive_end
}
trap cleanup EXIT

# --- the realistic pod (replaces bench/lib/rollout.sh's one-container template) ---------------

# The claim template; CLAIM_SIZE is small: the hostPath provisioner only makes a directory.
claim_spec() {
  echo "{accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}"
}

# template IMAGE VOLUMES: the pod template at the indentation rollout.sh's workloads expect;
# VOLUMES is the pod's `volumes:` entry for `data` (empty: a CloneSet's volumeClaimTemplates).
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
          command: [/bin/sh, -c, "sleep 3; exec /app"]
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
          volumeMounts: [{name: data, mountPath: /data}]
        - name: sidecar
          image: $SIDECAR
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 9090}, periodSeconds: 1}
${2:-}
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
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: $(claim_spec)
  template:
$(template "$APP_V1")
EOF
}

# DEPLOYMENT_VOLUME: ephemeral (a claim per pod, the baseline) or shared (one claim for all pods).
deployment() {
  local volumes
  if [[ "${DEPLOYMENT_VOLUME:-ephemeral}" == shared ]]; then
    cat <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data-shared}
spec: $(claim_spec)
---
EOF
    volumes="      volumes: [{name: data, persistentVolumeClaim: {claimName: data-shared}}]"
  else
    volumes="      volumes: [{name: data, ephemeral: {volumeClaimTemplate: {spec: $(claim_spec)}}}]"
  fi
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $N
  selector: {matchLabels: {app: bench}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: "20%", maxSurge: 0}}
  template:
$(template "$APP_V1" "$volumes")
EOF
}

# The images on the node before any case, so no case pays a pull the others do not.
prepull() {
  new_namespace prepull
  local ns="$NS" img i=0
  for img in "$APP_V1" "$APP_V2" "$SIDECAR"; do
    i=$((i + 1))
    kubectl -n "$ns" run "pull-$i" --image="$img" --image-pull-policy=IfNotPresent \
      --restart=Never --overrides='{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
  done
  kubectl -n "$ns" wait pod --all --for=condition=Ready --timeout=180s >/dev/null
  kubectl delete namespace "$ns" --wait=true >/dev/null
}

# --- graft ------------------------------------------------------------------------------------

controller_start() { # namespace
  "$GRAFT" controllers --namespace "$1" --metrics-addr 127.0.0.1:0 >"$OUT/controllers-$1.log" 2>&1 &
  GRAFT_PID=$!
}
controller_pid() { echo "$GRAFT_PID"; }
controller_stop() {
  kill "$GRAFT_PID" 2>/dev/null || true
  wait "$GRAFT_PID" 2>/dev/null || true
  GRAFT_PID=""
}

sc="$(kubectl get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name} {.provisioner} {.volumeBindingMode}{end}')"
[[ -n "$sc" ]] || { echo "the cluster has no default StorageClass: the pods' claims would not bind" >&2; exit 1; }
echo "realistic rollout: $N pods (app 3 s to ready + unchanged sidecar + a claim each; default StorageClass: $sc)" >&2
echo "graft: $GRAFT; log: $LOG" >&2
if (( KRUISE )); then deploy/kruise/build.sh >>"$LOG" 2>&1 || { echo "building OpenKruise failed: see $LOG" >&2; exit 1; }; fi
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/clonesets.apps.kruise.io --timeout=60s >/dev/null
prepull

echo "== graft" >&2
OUT="$ROOT/graft"
run_case inplace cloneset InPlaceIfPossible
run_case recreate cloneset ReCreate
run_case deployment deployment
DEPLOYMENT_VOLUME=shared run_case deployment-shared deployment

if (( KRUISE )); then
  echo "== OpenKruise $KRUISE_VERSION (waiting for this benchmark's turn on the cluster)" >&2
  exclusive_begin
  INSTALLED=1
  deploy/kruise/kruise up >>"$LOG" 2>&1 || { echo "installing OpenKruise failed: see $LOG" >&2; exit 1; }
  KRUISE_PID="$(deploy/kruise/kruise pid)"
  OUT="$ROOT/kruise"
  RUN="$RUN-kruise"
  controller_start() { :; }
  controller_stop() { :; }
  controller_pid() { echo "$KRUISE_PID"; }
  run_case inplace cloneset InPlaceIfPossible
  cp "${KRUISE_LOGS:-/var/log/graft-kruise}/kruise-manager.log" "$OUT/"
  deploy/kruise/kruise down >>"$LOG" 2>&1 || { echo "removing OpenKruise failed: see $LOG" >&2; exit 1; }
  INSTALLED=0
  exclusive_end
fi

g="$ROOT/graft" k="$ROOT/kruise"
sec() { cat "$1/$2.seconds"; }
base="$(sec "$g" deployment)"
row() { # title seconds
  printf '%-58s %9s s %10sx\n' "$1" "$2" "$(ratio "$2" "$base")"
}
echo
echo "realistic rollout: $N pods, app:v1 -> app:v2 (ready ~3 s after start), unchanged sidecar, a claim per pod,"
echo "maxUnavailable 20%; ratio to the Deployment with a claim per pod (goal of issue 13: graft in-place <= 0.5x)"
printf '%-58s %11s %11s\n' "" "seconds" "vs Deploy."
row "graft CloneSet InPlaceIfPossible" "$(sec "$g" inplace)"
row "graft CloneSet ReCreate (claims kept)" "$(sec "$g" recreate)"
if (( KRUISE )); then
  row "OpenKruise $KRUISE_VERSION CloneSet InPlaceIfPossible" "$(sec "$k" inplace)"
fi
row "Deployment RollingUpdate, a claim per pod (ephemeral)" "$base"
row "Deployment RollingUpdate, one shared claim (reference)" "$(sec "$g" deployment-shared)"
if (( KRUISE )); then
  printf 'graft in-place / OpenKruise in-place: %sx\n' "$(ratio "$(sec "$g" inplace)" "$(sec "$k" inplace)")"
fi
echo
echo "where the time of an in-place pod goes (watch receive times; maxUnavailable = $SLOTS pods):"
runs=("graft=$g/inplace.pods.jsonl")
if (( KRUISE )); then runs+=("OpenKruise=$k/inplace.pods.jsonl"); fi
python3 bench/lib/podwatch.py report --image "$APP_V2" --slots "$SLOTS" "${runs[@]}"
echo "(log: $LOG; controller logs and per-pod times, inplace.pods.jsonl.csv: $ROOT)"
