#!/usr/bin/env bash
# Pre-pull benchmark (issue 6), on the local cluster from deploy/local.
#
# In one run, with graft-test/large:v1 (~220 MB) removed from containerd before each step:
#   (a) baseline: a pod that must pull the image itself, from creation until it is Running;
#   (b) an ImagePullJob pre-pulling it through `graft controllers` + `graft nodeagent`, from job
#       creation until the job has completed;
#   then a pod using the pre-pulled image, from creation until Running.
# Prints the seconds and the ratios to the baseline. Figures are printed, never asserted.
#
# Usage: bench/prepull.sh        (env: GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

LARGE="$REGISTRY/graft-test/large:v1"
RUN="$(date +%s)-$$"
NS="graft-bench-prepull-$RUN"
LOGDIR="/tmp/graft-bench-$RUN"
mkdir -p "$LOGDIR"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The node's NodeImage is shared with the imagepull tests: take the same lock they do.
exec 9>/tmp/graft-nodeimage-tests.lock
flock 9

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# shellcheck source=bench/lib/large.sh
source bench/lib/large.sh

pod() { # name
  cat <<POD
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: app
      image: $LARGE
      imagePullPolicy: IfNotPresent
      resources: {requests: {cpu: 1m, memory: 8Mi}}
POD
}

# Seconds from creating pod $1 until it is Running.
time_pod() {
  local t0 t1
  t0=$(now)
  pod "$1" | kubectl -n "$NS" apply -f - >/dev/null
  kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Running "pod/$1" --timeout=600s >/dev/null
  t1=$(now)
  # Wait until the container is gone: it would keep the image's layers on the node.
  kubectl -n "$NS" delete pod "$1" --wait=true --timeout=120s >/dev/null
  secs "$t0" "$t1"
}

kubectl create namespace "$NS" >/dev/null
kubectl label namespace "$NS" graft.dev/test=true >/dev/null
until kubectl -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
"$GRAFT" crds | kubectl apply --server-side --force-conflicts -f - >/dev/null

# (a) The pod pulls the image itself.
remove_large
POD_PULLS=$(time_pod pulls-itself)

# (b) Pre-pull with an ImagePullJob, then start a pod on the pre-pulled image.
remove_large
"$GRAFT" controllers --namespace "$NS" --metrics-addr 127.0.0.1:0 --nodeimage-manager=true \
  --nodeimage-creation-delay-seconds 0 --pull-secrets-namespace "$NS" >"$LOGDIR/controllers.log" 2>&1 &
PIDS+=($!)
NODE_NAME="$GRAFT_NODE_NAME" "$GRAFT" nodeagent --pull-secrets-namespace "$NS" --crr-namespace "$NS" >"$LOGDIR/nodeagent.log" 2>&1 &
PIDS+=($!)
until kubectl get nodeimage "$GRAFT_NODE_NAME" >/dev/null 2>&1; do sleep 0.2; done
sleep 1 # let both processes' watches start
t0=$(now)
kubectl -n "$NS" apply -f - >/dev/null <<JOB
apiVersion: apps.kruise.io/v1alpha1
kind: ImagePullJob
metadata: {name: prepull-large}
spec:
  image: $LARGE
  selector: {names: [$GRAFT_NODE_NAME]}
JOB
kubectl -n "$NS" wait --for=jsonpath='{.status.message}'='job has completed' imagepulljob/prepull-large --timeout=600s >/dev/null
t1=$(now)
PREPULL=$(secs "$t0" "$t1")
SUCCEEDED=$(kubectl -n "$NS" get imagepulljob prepull-large -o jsonpath='{.status.succeeded}')
[[ "$SUCCEEDED" == "1" ]] || { echo "the ImagePullJob did not succeed; logs in $LOGDIR" >&2; exit 1; }
POD_PREPULLED=$(time_pod uses-prepulled)

printf '%-52s %8s %16s\n' "large:v1 (~220 MB), local registry" "seconds" "vs pod pulling"
printf '%-52s %8s %16s\n' "pod start, pod pulls the image itself (baseline)" "$POD_PULLS" "1.00x"
printf '%-52s %8s %16s\n' "ImagePullJob pre-pull until completed" "$PREPULL" "$(ratio "$PREPULL" "$POD_PULLS")x"
printf '%-52s %8s %16s\n' "pod start after the pre-pull" "$POD_PREPULLED" "$(ratio "$POD_PREPULLED" "$POD_PULLS")x"
echo "logs: $LOGDIR"
