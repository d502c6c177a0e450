#!/usr/bin/env bash
# Whole-system rollout benchmark (issue 4), on the local cluster from deploy/local.
#
# The same image change (app:v1 -> app:v2) on N pods with maxUnavailable 20%, as
#   (a) a CloneSet with InPlaceIfPossible, (b) a CloneSet with ReCreate, (c) a Deployment with
#   RollingUpdate (maxSurge 0), the baseline,
# each in a fresh namespace, measured from the spec change until all N pods are updated and ready
# (bench/lib/rollout.sh). Prints each duration, its ratio to the Deployment, the peak RSS (VmHWM)
# of the `graft controllers` process that ran each CloneSet, and the per-pod breakdown of the
# in-place rollout (bench/lib/podwatch.py). Figures are printed, never asserted.
#
# Usage: bench/rollout.sh        (env: N=30, GRAFT=<graft binary>, default the release build;
#                                 BENCH_OUT=<dir> keeps the results there, for bench/kruise.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
source bench/lib/rollout.sh
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

OUT="${BENCH_OUT:-/tmp/graft-bench-$RUN}"
mkdir -p "$OUT"
GRAFT_PID=""

cleanup() {
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null || true; fi
  rollout_cleanup
}
trap cleanup EXIT

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

echo "rollout benchmark: $N pods, app:v1 -> app:v2, maxUnavailable 20% (graft: $GRAFT)" >&2
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/clonesets.apps.kruise.io --timeout=60s >/dev/null
prepull
run_case inplace cloneset InPlaceIfPossible
run_case recreate cloneset ReCreate
run_case deployment deployment

base="$(seconds_of deployment)"
echo
printf '%-30s %10s %14s %22s\n' "rollout ($N pods)" "seconds" "vs Deployment" "graft peak RSS (VmHWM)"
for key in inplace recreate; do
  title="CloneSet InPlaceIfPossible"; [[ $key == recreate ]] && title="CloneSet ReCreate"
  printf '%-30s %10s %14s %22s\n' "$title" "$(seconds_of $key)" "$(ratio "$(seconds_of $key)" "$base")x" \
    "$(mib "$(cat "$OUT/$key.rss_kib")")"
done
printf '%-30s %10s %14s %22s\n' "Deployment RollingUpdate" "$base" "1.00x" "-"
echo
echo "where the time of an in-place pod goes (watch receive times; maxUnavailable = $SLOTS pods):"
python3 bench/lib/podwatch.py report --image "$APP_V2" --slots "$SLOTS" "graft=$OUT/inplace.pods.jsonl"
echo "(controller logs, per-pod times in inplace.pods.jsonl.csv: $OUT)"
