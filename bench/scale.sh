#!/usr/bin/env bash
# Scale (issue 13): graft's controllers next to OpenKruise v1.9.1's kruise-manager, each run alone,
# on SETS=100 CloneSets x REPLICAS=30 pods = 3,000 pods on NODES=30 simulated nodes (kwok,
# deploy/kwok/kwok: no container runs; deploy/kwok/stages.yaml plays the kubelet, in-place image
# updates included), in one namespace, on the local cluster from deploy/local. For each:
#   - the CloneSets are created and rolled out (every pod Running and Ready on a kwok node);
#   - then one template change (app:v1 -> app:v2, InPlaceIfPossible, maxUnavailable 20%) on all
#     of them, applied in one `kubectl apply`, timed from just before it until every pod's spec is
#     patched and until every pod is updated (container status shows the new image, pod Ready,
#     InPlaceUpdateReady True; from a pod watch, bench/lib/podwatch.py spans), and until every
#     CloneSet's status reports all its pods updated and ready;
#   - the controller process's peak RSS (VmHWM) and CPU seconds (utime + stime): for the rollout
#     alone and for creation + rollout.
# The pods tolerate kwok's taint and select its nodes (type=kwok); nothing else lands there (the
# nodes' NoSchedule taint): graft's node agent and kruise-daemon do not run on them (neither is
# started by this script, and no DaemonSet tolerates the taint).
# graft runs as `graft controllers --namespace <ns>` (its NodeImage manager is off in a namespace);
# kruise-manager runs with all its controllers cluster-wide (deploy/kruise/kruise up).
#
# The simulated nodes would change what other users' cluster tests see (e.g. an ImagePullJob for
# all nodes), so the whole run is this benchmark's turn on the cluster (bench/lib/exclusive.sh) and
# it keeps /tmp/kruise-installed, the marker other cluster users wait on, from before the nodes
# are created until they and OpenKruise are gone. Everything (namespace, kwok nodes and their
# Leases/NodeImages, OpenKruise) is removed on every exit, also on failure or Ctrl-C.
# Figures are printed, never asserted; tool output goes to the log whose path is printed.
#
# Usage: bench/scale.sh    (env: NODES=30 SETS=100 REPLICAS=30, GRAFT=<graft binary>, default the
#                           release build; KRUISE=0 skips OpenKruise; KRUISE_VERSION=1.9.1)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
source bench/lib/exclusive.sh
NODES="${NODES:-30}"
SETS="${SETS:-100}"
REPLICAS="${REPLICAS:-30}"
TOTAL=$((SETS * REPLICAS))
KRUISE="${KRUISE:-1}"
KRUISE_VERSION="${KRUISE_VERSION:-1.9.1}"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }
APP_V1="$REGISTRY/graft-test/app:v1"
APP_V2="$REGISTRY/graft-test/app:v2"
RUN="${RUN:-$(date +%s)-$$}"
ROOT="/tmp/graft-bench-scale-$RUN"
LOG="$ROOT/bench.log"
PODWATCH=bench/lib/podwatch.py
CLK_TCK="$(getconf CLK_TCK)"
OTHERS_MARKER="${OTHERS_MARKER:-/tmp/kruise-installed}"
# deploy/kruise/kruise's own marker: this script keeps $OTHERS_MARKER for the whole run.
export KRUISE_MARKER="$ROOT/kruise-installed"
mkdir -p "$ROOT/graft" "$ROOT/kruise"
: >"$LOG"
HOLD_MARKER=0 KWOK_UP=0 INSTALLED=0 GRAFT_PID="" WATCH_PID="" NS=""

say() { echo "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_secs() { awk -v t="$1" -v k="$CLK_TCK" 'BEGIN {printf "%.1f", t / k}'; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

cleanup() {
  local ok=1
  set +e
  if [[ -n "$WATCH_PID" ]]; then kill "$WATCH_PID" 2>/dev/null; fi
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null; wait "$GRAFT_PID" 2>/dev/null; fi
  if [[ -n "$NS" ]]; then delete_namespace "$NS" || ok=0; fi
  if (( INSTALLED )); then deploy/kruise/kruise down >>"$LOG" 2>&1 || { say "OpenKruise removal failed: see $LOG"; ok=0; }; fi
  if (( KWOK_UP )); then deploy/kwok/kwok down >>"$LOG" 2>&1 || { say "kwok removal failed: see $LOG"; ok=0; }; fi
  if (( HOLD_MARKER )); then
    if (( ok )); then rm -f "$OTHERS_MARKER"; else say "left $OTHERS_MARKER in place: the cluster is not clean (see $LOG)"; fi
  fi
  exclusive_end
}
trap cleanup EXIT

delete_namespace() { # ns (kwok removes each deleted pod at once while it runs)
  kubectl delete namespace "$1" --wait=true --timeout=600s >>"$LOG" 2>&1 || { say "namespace $1 not deleted in 600 s"; return 1; }
  NS=""
}

clonesets() { # image
  local i
  for ((i = 1; i <= SETS; i++)); do
    cat <<EOF
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: scale-$i}
spec:
  replicas: $REPLICAS
  selector: {matchLabels: {app: scale-$i}}
  updateStrategy: {type: InPlaceIfPossible, maxUnavailable: "20%"}
  template:
    metadata:
      labels: {app: scale-$i}
    spec:
      nodeSelector: {type: kwok}
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      terminationGracePeriodSeconds: 0
      containers:
        - name: app
          image: $1
          resources: {requests: {cpu: 1m, memory: 8Mi}}
---
EOF
  done
}

# All SETS CloneSets at their generation with every pod updated and ready.
rolled_out() {
  local fields='{range .items[*]}{.metadata.generation} {.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} {.status.updatedReadyReplicas} {.status.readyReplicas}{"\n"}{end}'
  kubectl -n "$NS" get clonesets -o jsonpath="$fields" 2>/dev/null \
    | awk -v sets="$SETS" -v n="$REPLICAS" '$1 == $2 && $3 == n && $4 == n && $5 == n && $6 == n {ok++} END {exit !(ok == sets)}'
}

wait_rolled_out() { # timeout-seconds what
  local deadline=$(( $(date +%s) + $1 ))
  until rolled_out; do
    if (( $(date +%s) > deadline )); then
      say "timed out ($1 s) waiting for $2: $(kubectl -n "$NS" get clonesets --no-headers 2>/dev/null | awk '$2 != $4 || $3 != $4' | head -n 3 | tr '\n' ';')"
      return 1
    fi
    sleep 1
  done
}

# run_phase OUT graft|kruise: the CloneSets created, rolled out, changed and rolled out again.
run_phase() {
  local out="$1" pid t_create t0 t_applied t1 c_create c0 c1
  NS="graft-bench-scale-$RUN-$2"
  kubectl create namespace "$NS" >/dev/null
  kubectl label namespace "$NS" graft.dev/test=true >/dev/null
  until kubectl -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
  if [[ "$2" == graft ]]; then
    "$GRAFT" controllers --namespace "$NS" --metrics-addr 127.0.0.1:0 >"$out/controllers.log" 2>&1 &
    GRAFT_PID=$!
    pid=$GRAFT_PID
  else
    pid="$(deploy/kruise/kruise pid)"
  fi
  c_create="$(cpu_ticks "$pid")"
  t_create="$(now)"
  clonesets "$APP_V1" >"$ROOT/v1.yaml"
  clonesets "$APP_V2" >"$ROOT/v2.yaml"
  kubectl -n "$NS" apply --server-side --field-manager=bench -f "$ROOT/v1.yaml" >/dev/null
  wait_rolled_out 900 "$SETS CloneSets x $REPLICAS pods to be created"
  secs "$t_create" "$(now)" >"$out/create.seconds"
  # The watch lists all pods first; the rollout starts once it has them all.
  rm -f "$out/pods.jsonl" "$out/pods.jsonl.ready"
  python3 "$PODWATCH" watch "$NS" "$out/pods.jsonl" --expect "$TOTAL" 2>>"$LOG" &
  WATCH_PID=$!
  local deadline=$(( $(date +%s) + 120 ))
  until [[ -e "$out/pods.jsonl.ready" ]]; do
    (( $(date +%s) < deadline )) || { say "the pod watcher saw fewer than $TOTAL pods in 120 s"; return 1; }
    sleep 0.2
  done
  sleep 5 # let the controller settle after the creation
  python3 "$PODWATCH" mark "$out/pods.jsonl" start
  c0="$(cpu_ticks "$pid")"
  t0="$(now)"
  kubectl -n "$NS" apply --server-side --field-manager=bench -f "$ROOT/v2.yaml" >/dev/null
  t_applied="$(now)"
  wait_rolled_out 1200 "the template change to roll out on all $TOTAL pods"
  t1="$(now)"
  c1="$(cpu_ticks "$pid")"
  sleep 2 # the last pod events reach the watcher
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
  secs "$t0" "$t_applied" >"$out/apply.seconds"
  secs "$t0" "$t1" >"$out/rollout.seconds"
  cpu_secs "$((c1 - c0))" >"$out/rollout.cpu"
  cpu_secs "$((c1 - c_create))" >"$out/total.cpu"
  peak_rss_kib "$pid" >"$out/peak.rss_kib"
  python3 "$PODWATCH" spans --image "$APP_V2" "$out/pods.jsonl" >"$out/spans.json"
}

say "scale: $SETS CloneSets x $REPLICAS pods = $TOTAL pods on $NODES kwok nodes; graft: $GRAFT; log: $LOG"
deploy/kwok/build.sh >>"$LOG" 2>&1 || { say "building kwok failed: see $LOG"; exit 1; }
if (( KRUISE )); then deploy/kruise/build.sh >>"$LOG" 2>&1 || { say "building OpenKruise failed: see $LOG"; exit 1; }; fi
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/clonesets.apps.kruise.io --timeout=60s >/dev/null

say "waiting for this benchmark's turn on the cluster (no cluster test running)"
exclusive_begin
[[ -e "$OTHERS_MARKER" ]] && { say "$OTHERS_MARKER exists: OpenKruise or another benchmark is on the cluster"; exit 1; }
touch "$OTHERS_MARKER"
HOLD_MARKER=1
KWOK_UP=1
deploy/kwok/kwok up "$NODES" >>"$LOG" 2>&1 || { say "kwok failed to start: see $LOG"; exit 1; }

say "== graft"
OUT="$ROOT/graft"
run_phase "$OUT" graft
kill "$GRAFT_PID"; wait "$GRAFT_PID" 2>/dev/null || true
GRAFT_PID=""
delete_namespace "$NS"
say "  graft: rollout $(cat "$OUT/rollout.seconds") s"

if (( KRUISE )); then
  say "== OpenKruise $KRUISE_VERSION"
  INSTALLED=1
  deploy/kruise/kruise up >>"$LOG" 2>&1 || { say "installing OpenKruise failed: see $LOG"; exit 1; }
  OUT="$ROOT/kruise"
  run_phase "$OUT" kruise
  cp "${KRUISE_LOGS:-/var/log/graft-kruise}/kruise-manager.log" "$OUT/"
  delete_namespace "$NS"
  deploy/kruise/kruise down >>"$LOG" 2>&1 || { say "removing OpenKruise failed: see $LOG"; exit 1; }
  INSTALLED=0
  say "  OpenKruise: rollout $(cat "$OUT/rollout.seconds") s"
fi
deploy/kwok/kwok down >>"$LOG" 2>&1 || { say "kwok removal failed: see $LOG"; exit 1; }
KWOK_UP=0

field() { # dir key.sub
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); a,b=sys.argv[2].split("."); v=d[a][b]; print("-" if v is None else (f"{v:.1f}" if isinstance(v,float) else v))' \
    "$1/spans.json" "$2"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
g="$ROOT/graft" k="$ROOT/kruise"
line() { # title graft-value kruise-value unit
  if (( KRUISE )); then
    printf '%-62s %12s %12s %10s\n' "$1" "$2$4" "$3$4" "$(ratio "$2" "$3")x"
  else
    printf '%-62s %12s\n' "$1" "$2$4"
  fi
}
echo
echo "scale: $SETS CloneSets x $REPLICAS pods = $TOTAL pods on $NODES kwok nodes; template change app:v1 -> app:v2 on all,"
echo "InPlaceIfPossible, maxUnavailable 20%; seconds after the change (one kubectl apply: graft $(cat "$g/apply.seconds") s$( (( KRUISE )) && echo ", OpenKruise $(cat "$k/apply.seconds") s"))"
if (( KRUISE )); then
  printf '%-62s %12s %12s %11s\n' "" "graft" "Kruise $KRUISE_VERSION" "graft/Kr."
else
  printf '%-62s %12s\n' "" "graft"
fi
kv() { [[ -f "$k/$1" ]] && cat "$k/$1" || echo "-"; }
kf() { [[ -f "$k/spans.json" ]] && field "$k" "$1" || echo "-"; }
line "p50 pod patched (spec shows the new image)" "$(field "$g" patched.p50)" "$(kf patched.p50)" " s"
line "every pod patched (last spec patch seen; n=$(field "$g" patched.n)/$(field "$g" pods))" "$(field "$g" patched.last)" "$(kf patched.last)" " s"
line "p50 pod updated (status: new image, Ready, InPlaceUpdateReady)" "$(field "$g" updated.p50)" "$(kf updated.p50)" " s"
line "every pod updated (n=$(field "$g" updated.n)/$(field "$g" pods))" "$(field "$g" updated.last)" "$(kf updated.last)" " s"
line "every CloneSet status: all updated and ready" "$(cat "$g/rollout.seconds")" "$(kv rollout.seconds)" " s"
line "controller CPU seconds, rollout" "$(cat "$g/rollout.cpu")" "$(kv rollout.cpu)" " s"
line "controller CPU seconds, creation + rollout" "$(cat "$g/total.cpu")" "$(kv total.cpu)" " s"
line "controller peak RSS (VmHWM)" "$(mib "$(cat "$g/peak.rss_kib")")" "$( [[ -f "$k/peak.rss_kib" ]] && mib "$(cat "$k/peak.rss_kib")" || echo -)" " MiB"
line "creation: $TOTAL pods Running and Ready (scheduler included)" "$(cat "$g/create.seconds")" "$(kv create.seconds)" " s"
echo "(log: $LOG; pod watches, controller logs: $ROOT)"
