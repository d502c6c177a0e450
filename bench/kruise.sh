#!/usr/bin/env bash
# graft next to the real OpenKruise (issue 13), on the local cluster from deploy/local, one run:
#   1. graft's rollouts (bench/rollout.sh: CloneSet InPlaceIfPossible, ReCreate, a Deployment);
#   2. OpenKruise v1.9.1 installed (deploy/kruise/kruise up: kruise-manager built from the Go module
#      proxy, all alpha and beta gates on), the same three rollouts (the Deployment's pods now pass
#      OpenKruise's pod webhook, as they would in a cluster that runs it), and OpenKruise removed
#      again (deploy/kruise/kruise down: webhooks first, graft's CRDs restored, checked);
#   3. the table side by side with each run's ratio to its own Deployment, the controllers' peak
#      RSS, and the per-pod breakdown of both in-place rollouts (bench/lib/podwatch.py).
# OpenKruise is removed on every exit, also on failure or Ctrl-C. Figures are printed, never asserted.
#
# Usage: bench/kruise.sh     (env: N=30, GRAFT=<graft binary>, KRUISE_VERSION=1.9.1)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
source bench/lib/rollout.sh
source bench/lib/exclusive.sh
ROOT="/tmp/graft-bench-kruise-$RUN"
mkdir -p "$ROOT/graft" "$ROOT/kruise"
INSTALLED=0

cleanup() {
  rollout_cleanup
  if (( INSTALLED )); then deploy/kruise/kruise down || true; fi
  exclusive_end
}
trap cleanup EXIT

deploy/kruise/build.sh >/dev/null
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

echo "== graft" >&2
BENCH_OUT="$ROOT/graft" RUN="$RUN-graft" bench/rollout.sh >"$ROOT/graft/report.txt"
cat "$ROOT/graft/report.txt" >&2

echo "== OpenKruise ${KRUISE_VERSION:-1.9.1} (in this benchmark's turn on the cluster: bench/lib/exclusive.sh)" >&2
exclusive_begin
INSTALLED=1
deploy/kruise/kruise up
KRUISE_PID="$(deploy/kruise/kruise pid)"
OUT="$ROOT/kruise"
RUN="$RUN-kruise"
controller_start() { :; }
controller_stop() { :; }
controller_pid() { echo "$KRUISE_PID"; }
run_case inplace cloneset InPlaceIfPossible
run_case recreate cloneset ReCreate
run_case deployment deployment
# One kruise-manager ran all the cases: its peak so far.
peak_rss_kib "$KRUISE_PID" >"$OUT/peak.rss_kib"
cp "${KRUISE_LOGS:-/var/log/graft-kruise}/kruise-manager.log" "$OUT/"
deploy/kruise/kruise down
INSTALLED=0
exclusive_end

g="$ROOT/graft" k="$ROOT/kruise"
sec() { cat "$1/$2.seconds"; }
cell() { printf '%s s (%sx)' "$(sec "$1" "$2")" "$(ratio "$(sec "$1" "$2")" "$(sec "$1" deployment)")"; }
echo
echo "rollout: $N pods, app:v1 -> app:v2, maxUnavailable 20%; in parentheses: vs the Deployment of the same run"
printf '%-32s %22s %22s %12s\n' "" "graft" "OpenKruise ${KRUISE_VERSION:-1.9.1}" "graft/Kruise"
for key in inplace recreate; do
  title="CloneSet InPlaceIfPossible"; [[ $key == recreate ]] && title="CloneSet ReCreate"
  printf '%-32s %22s %22s %11sx\n' "$title" "$(cell "$g" $key)" "$(cell "$k" $key)" "$(ratio "$(sec "$g" $key)" "$(sec "$k" $key)")"
done
printf '%-32s %22s %22s %12s\n' "Deployment RollingUpdate" "$(sec "$g" deployment) s" "$(sec "$k" deployment) s" ""
graft_rss="$(sort -n "$g/inplace.rss_kib" "$g/recreate.rss_kib" | tail -n 1)"
printf '%-32s %22s %22s %11sx\n' "controller peak RSS (VmHWM)" "$(mib "$graft_rss")" "$(mib "$(cat "$k/peak.rss_kib")")" \
  "$(ratio "$graft_rss" "$(cat "$k/peak.rss_kib")")"
echo
echo "where the time of an in-place pod goes (watch receive times; maxUnavailable = $SLOTS pods):"
python3 bench/lib/podwatch.py report --image "$APP_V2" --slots "$SLOTS" \
  "graft=$g/inplace.pods.jsonl" "OpenKruise=$k/inplace.pods.jsonl"
echo "(logs and per-pod times, inplace.pods.jsonl.csv: $ROOT)"
