#!/usr/bin/env bash
# Advanced StatefulSet benchmark (issue 15), on the local cluster from deploy/local, one run.
#
# In one namespace of its own (bench-sts-<run>), two sets of N=10 pods side by side, each with
# podManagementPolicy Parallel, a PVC per pod (volumeClaimTemplates, mounted at /data; the
# cluster's default StorageClass) and the same pod template (bench/lib/rollout.sh's app container):
#   (a) graft's Advanced StatefulSet (apps.kruise.io/v1beta1), RollingUpdate with
#       podUpdatePolicy InPlaceIfPossible and the InPlaceUpdateReady readiness gate;
#   (b) the baseline: a native StatefulSet (apps/v1), RollingUpdate (each pod deleted and recreated
#       under its name, with its PVC).
# Both use the same maxUnavailable, MAX_UNAVAILABLE=1 by default: a native StatefulSet honours a
# larger one only with the feature gate MaxUnavailableStatefulSet, alpha and off by default in
# Kubernetes 1.34 (the API server drops the field; the script checks and refuses a larger value
# the cluster would ignore).
# Then ROUNDS=2 rounds of the same image change on each (app:v1 -> v2, then v2 -> v1, images
# pre-pulled), the two sets taking turns, each timed from the template change until
#   ASTS:   observedGeneration caught up, replicas = updatedReplicas = readyReplicas =
#           availableReplicas = updatedReadyReplicas = N and currentRevision = updateRevision;
#   native: observedGeneration caught up, replicas = updatedReplicas = readyReplicas =
#           availableReplicas = N and currentRevision = updateRevision;
#   and, both, exactly N live pods at the update revision, Ready, their app container running the
#   new image.
# A watch on each rollout's pods (bench/lib/podwatch.py) counts pods recreated (new UIDs) and the
# most pods unavailable at once (missing or not Ready); PVC UIDs are compared before and after.
# Prints the durations, the ratio ASTS / native StatefulSet, those counts, the peak RSS (VmHWM) of
# the `graft controllers` process over the run and the per-pod breakdown of the first in-place
# rollout. Figures are printed, never asserted; the run fails (after printing) when the ASTS
# recreated a pod, a PVC changed, maxUnavailable was exceeded or a set owns more ControllerRevisions
# than its two templates make (another controller acted on it), and at once when a rollout does
# not finish within ROLLOUT_TIMEOUT seconds (with the set's status, pods, Events and graft's log)
# or OpenKruise gets installed meanwhile (its kruise-manager acts on every Advanced StatefulSet: it
# waits for OpenKruise to be removed before it starts, at most KRUISE_WAIT seconds).
#
# Usage: bench/statefulset.sh   (env: N=10, ROUNDS=2, MAX_UNAVAILABLE=1, ROLLOUT_TIMEOUT=600,
#                                KRUISE_WAIT=1800, GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
N="${N:-10}"
source bench/lib/rollout.sh
ROUNDS="${ROUNDS:-2}"
MAX_UNAVAILABLE="${MAX_UNAVAILABLE:-1}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-600}"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }
# While OpenKruise is installed (deploy/kruise/kruise keeps this marker), its kruise-manager acts on
# every Advanced StatefulSet of the cluster, this benchmark's too.
KRUISE_MARKER="${KRUISE_MARKER:-/tmp/kruise-installed}"
KRUISE_WAIT="${KRUISE_WAIT:-1800}"

OUT="/tmp/graft-bench-statefulset-$RUN"
mkdir -p "$OUT"
NS="bench-sts-$RUN"
ASTS=asts      # the Advanced StatefulSet: pods asts-0.., PVCs data-asts-0..
NATIVE=native  # the native StatefulSet: pods native-0.., PVCs data-native-0..
GRAFT_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null || true; fi
  if [[ -n "$WATCH_PID" ]]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  if kubectl get namespace "$NS" >/dev/null 2>&1; then
    # The sets first, so that no controller recreates a PVC the namespace's deletion removes.
    kubectl -n "$NS" delete statefulsets.apps.kruise.io,statefulsets.apps --all --wait=false >/dev/null 2>&1 || true
    kubectl -n "$NS" delete pvc --all --wait=false >/dev/null 2>&1 || true
    kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "bench/statefulset.sh: $*" >&2
  exit 1
}

# Waits (at most KRUISE_WAIT seconds) until OpenKruise is not installed.
wait_no_kruise() {
  local start last_say=0
  start=$(date +%s)
  while [[ -e "$KRUISE_MARKER" ]]; do
    if (( $(date +%s) - last_say >= 60 )); then
      echo "waiting for OpenKruise to be removed from the cluster ($KRUISE_MARKER exists)" >&2
      last_say=$(date +%s)
    fi
    (( $(date +%s) - start < KRUISE_WAIT )) || fail "OpenKruise still installed after ${KRUISE_WAIT}s ($KRUISE_MARKER)"
    sleep 1
  done
}

# Someone installing OpenKruise while the benchmark runs (a cluster test that took its turn just
# before this run began) makes two controllers act on the Advanced StatefulSet: the figures are void.
kruise_guard() {
  [[ ! -e "$KRUISE_MARKER" ]] || fail "OpenKruise was installed on the cluster during the run ($KRUISE_MARKER" \
    "appeared): its kruise-manager acts on every Advanced StatefulSet, this one too, so the figures are void; run again"
}

# --- the workloads ----------------------------------------------------------------------------

claim_template() {
  cat <<EOF
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}
EOF
}

# template NAME IMAGE [GATE]: the pod template of set NAME; GATE adds the InPlaceUpdateReady gate.
template() {
  cat <<EOF
    metadata:
      labels: {app: $1}
    spec:
      terminationGracePeriodSeconds: 3
EOF
  [[ -n "${3:-}" ]] && echo "      readinessGates: [{conditionType: InPlaceUpdateReady}]"
  cat <<EOF
      containers:
        - name: app
          image: $2
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
          volumeMounts: [{name: data, mountPath: /data}]
EOF
}

native_statefulset() {
  cat <<EOF
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: $NATIVE}
spec:
  replicas: $N
  serviceName: bench-sts
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: $NATIVE}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0, maxUnavailable: $MAX_UNAVAILABLE}}
$(claim_template)
  template:
$(template "$NATIVE" "$APP_V1")
EOF
}

advanced_statefulset() {
  cat <<EOF
apiVersion: apps.kruise.io/v1beta1
kind: StatefulSet
metadata: {name: $ASTS}
spec:
  replicas: $N
  serviceName: bench-sts
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: $ASTS}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {podUpdatePolicy: InPlaceIfPossible, partition: 0, maxUnavailable: $MAX_UNAVAILABLE}
$(claim_template)
  template:
$(template "$ASTS" "$APP_V1" gate)
EOF
}

resource_of() { # set
  if [[ "$1" == "$ASTS" ]]; then echo statefulsets.apps.kruise.io; else echo statefulsets.apps; fi
}

# --- waiting ----------------------------------------------------------------------------------

# Prints "ok" when set NAME has rolled out to IMAGE, else what is missing (one line).
rollout_state() { # set image
  local kind status
  kind="$(resource_of "$1")"
  status="$(kubectl -n "$NS" get "$kind" "$1" -o json 2>/dev/null)" || { echo "cannot read $kind/$1"; return; }
  kubectl -n "$NS" get pods -l "app=$1" -o json 2>/dev/null | python3 -c '
import json, sys
set_, image, n, advanced = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
pods = json.load(sys.stdin)["items"]
st, gen = set_.get("status") or {}, set_["metadata"]["generation"]
counts = ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"]
if advanced:
    counts.append("updatedReadyReplicas")
missing = [f"{c}={st.get(c, 0)}" for c in counts if st.get(c, 0) != n]
observed, rev, current = st.get("observedGeneration"), st.get("updateRevision"), st.get("currentRevision")
if observed != gen:
    missing.append(f"observedGeneration={observed} (generation {gen})")
if not rev or current != rev:
    missing.append(f"currentRevision={current} updateRevision={rev}")
def done(p):
    if p["metadata"].get("deletionTimestamp") or p["metadata"].get("labels", {}).get("controller-revision-hash") != rev:
        return False
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    app = next((c for c in p["status"].get("containerStatuses") or [] if c["name"] == "app"), {})
    spec = next(c["image"] for c in p["spec"]["containers"] if c["name"] == "app")
    tag = image.rsplit("/", 1)[-1]
    return ready and spec == image and app.get("ready") and app.get("image", "").endswith(tag)
updated = sum(done(p) for p in pods)
if updated != n or len(pods) != n:
    missing.append(f"pods updated and ready {updated} of {len(pods)}")
print("ok" if not missing else ", ".join(missing))' "$status" "$2" "$N" "$([[ "$1" == "$ASTS" ]] && echo 1 || echo 0)"
}

# What a failed wait leaves for the reader: the set's status, its pods, the namespace's Events.
diagnose() { # set
  local f="$OUT/failure-$1.txt"
  {
    echo "== $(resource_of "$1")/$1 status"
    kubectl -n "$NS" get "$(resource_of "$1")" "$1" -o jsonpath='{.status}' 2>&1; echo
    echo "== pods"
    kubectl -n "$NS" get pods -l "app=$1" -o custom-columns='NAME:.metadata.name,UID:.metadata.uid,REV:.metadata.labels.controller-revision-hash,IMAGE:.spec.containers[0].image,DELETING:.metadata.deletionTimestamp,READY:.status.conditions[?(@.type=="Ready")].status,GATE:.status.conditions[?(@.type=="InPlaceUpdateReady")].status,RESTARTS:.status.containerStatuses[0].restartCount,RUNNING_IMAGE:.status.containerStatuses[0].image' 2>&1
    echo "== PVCs"
    kubectl -n "$NS" get pvc 2>&1
    echo "== last Events"
    kubectl -n "$NS" get events --sort-by=.lastTimestamp 2>&1 | tail -n 40
    echo "== graft controllers log (last 40 lines of $OUT/controllers.log)"
    tail -n 40 "$OUT/controllers.log" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
  } >"$f"
  cat "$f" >&2
}

wait_rolled_out() { # set image timeout-seconds
  local deadline=$(( $(date +%s) + $3 )) got=""
  while :; do
    kruise_guard
    got="$(rollout_state "$1" "$2")"
    [[ "$got" == ok ]] && return 0
    if [[ -n "$GRAFT_PID" ]] && ! kill -0 "$GRAFT_PID" 2>/dev/null; then
      diagnose "$1"
      fail "graft controllers exited during the rollout of $1 (log: $OUT/controllers.log)"
    fi
    if (( $(date +%s) > deadline )); then
      diagnose "$1"
      fail "the rollout of $(resource_of "$1")/$1 in $NS to $2 did not finish in $3 s: $got (details above and in $OUT/failure-$1.txt)"
    fi
    sleep 0.25
  done
}

# --- measuring --------------------------------------------------------------------------------

# "name uid" lines of the set's pods or PVCs, sorted.
uids_of() { # pods|pvc set
  local names
  if [[ "$1" == pods ]]; then names="$2-"; else names="data-$2-"; fi
  kubectl -n "$NS" get "$1" -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.uid}{"\n"}{end}' \
    | awk -v p="$names" 'index($1, p) == 1' | sort
}

app_restarts() { # set
  kubectl -n "$NS" get pods -l "app=$1" \
    -o jsonpath='{range .items[*]}{range .status.containerStatuses[?(@.name=="app")]}{.restartCount}{"\n"}{end}{end}' \
    | awk '{s += $1} END {print s + 0}'
}

same_lines() { comm -12 <(echo "$1") <(echo "$2") | grep -c . || true; }

# ControllerRevisions the set owns: 2 after any round here (v1's and v2's; graft reuses v1's),
# more when another controller with its own revision hashes acted on the set.
revisions_of() { # set
  kubectl -n "$NS" get controllerrevisions -o json | python3 -c '
import json, sys
print(sum(any(o.get("name") == sys.argv[1] and o.get("controller") for o in r["metadata"].get("ownerReferences") or [])
          for r in json.load(sys.stdin)["items"]))' "$1"
}

# One rollout of set to image; results in OUT/<set>-<round>.*
run_round() { # set round image
  local set="$1" key="$1-$2" image="$3" kind t0 t1 pods_before pvcs_before restarts_before
  kind="$(resource_of "$set")"
  pods_before="$(uids_of pods "$set")"
  pvcs_before="$(uids_of pvc "$set")"
  restarts_before="$(app_restarts "$set")"
  start_watch "$NS" "$OUT/$key.pods.jsonl" "app=$set"
  python3 "$PODWATCH" mark "$OUT/$key.pods.jsonl" start
  t0="$(now)"
  kubectl -n "$NS" patch "$kind" "$set" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"$image\"}]" >/dev/null
  wait_rolled_out "$set" "$image" "$ROLLOUT_TIMEOUT"
  t1="$(now)"
  python3 "$PODWATCH" mark "$OUT/$key.pods.jsonl" done
  sleep 1 # the watch receives the last events
  stop_watch
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", b - a}' >"$OUT/$key.seconds"
  python3 "$PODWATCH" churn "$OUT/$key.pods.jsonl" >"$OUT/$key.churn.json"
  same_lines "$pods_before" "$(uids_of pods "$set")" >"$OUT/$key.pods_kept"
  same_lines "$pvcs_before" "$(uids_of pvc "$set")" >"$OUT/$key.pvcs_kept"
  echo "$(( $(app_restarts "$set") - restarts_before ))" >"$OUT/$key.restarts"
  revisions_of "$set" >"$OUT/$key.revisions"
  kruise_guard
  echo "  $set round $2 (-> ${image##*/}): $(cat "$OUT/$key.seconds") s" >&2
}

churn_of() { # key field
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT/$1.churn.json" "$2"
}

# --- the run ----------------------------------------------------------------------------------

sc="$(kubectl get storageclass -o jsonpath='{range .items[?(@.metadata.annotations.storageclass\.kubernetes\.io/is-default-class=="true")]}{.metadata.name} {.provisioner}{end}')"
[[ -n "$sc" ]] || fail "the cluster has no default StorageClass: the sets' PVCs would not bind"
echo "StatefulSet benchmark: $N pods each, Parallel, a PVC each ($sc), maxUnavailable $MAX_UNAVAILABLE," \
  "$ROUNDS rounds; namespace $NS; graft: $GRAFT; logs: $OUT" >&2
wait_no_kruise
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/statefulsets.apps.kruise.io --timeout=60s >/dev/null

kubectl create namespace "$NS" >/dev/null
kubectl label namespace "$NS" graft.dev/test=true >/dev/null
until kubectl -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done

# Both images on the node before any rollout, so no rollout pays a pull the other does not.
for img in "$APP_V1" "$APP_V2"; do
  kubectl -n "$NS" run "pull-${img##*:}" --image="$img" --image-pull-policy=IfNotPresent \
    --restart=Never --overrides='{"spec":{"terminationGracePeriodSeconds":0}}' >/dev/null
done
kubectl -n "$NS" wait pod pull-v1 pull-v2 --for=condition=Ready --timeout=180s >/dev/null \
  || fail "pre-pulling $APP_V1 and $APP_V2 did not finish in 180 s"
kubectl -n "$NS" delete pod pull-v1 pull-v2 --wait=true >/dev/null

kubectl -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: bench-sts}
spec: {clusterIP: None, selector: {bench: sts}}
EOF

native_statefulset | kubectl -n "$NS" apply -f - >/dev/null
native_max="$(kubectl -n "$NS" get statefulsets.apps "$NATIVE" -o jsonpath='{.spec.updateStrategy.rollingUpdate.maxUnavailable}')"
if [[ -z "$native_max" ]]; then
  native_note="its field dropped by the API server, feature gate MaxUnavailableStatefulSet off: 1 applies"
  (( MAX_UNAVAILABLE == 1 )) || fail "MAX_UNAVAILABLE=$MAX_UNAVAILABLE: this cluster drops a native StatefulSet's" \
    "maxUnavailable (feature gate MaxUnavailableStatefulSet, alpha and off by default in 1.34), so it would update" \
    "one pod at a time; run with MAX_UNAVAILABLE=1"
else
  native_note="kept by the API server"
fi
echo "native StatefulSet maxUnavailable: $MAX_UNAVAILABLE ($native_note)" >&2

"$GRAFT" controllers --namespace "$NS" --metrics-addr 127.0.0.1:0 >"$OUT/controllers.log" 2>&1 &
GRAFT_PID=$!
advanced_statefulset | kubectl -n "$NS" apply -f - >/dev/null
wait_rolled_out "$NATIVE" "$APP_V1" 300
wait_rolled_out "$ASTS" "$APP_V1" 300
for set in "$NATIVE" "$ASTS"; do
  pvcs="$(uids_of pvc "$set" | grep -c . || true)"
  (( pvcs == N )) || fail "$set has $pvcs PVCs, expected $N (one per pod)"
done

images=("$APP_V2" "$APP_V1")
for (( r = 1; r <= ROUNDS; r++ )); do
  image="${images[$(( (r - 1) % 2 ))]}"
  # The sets take turns, the first alternating, so that a slow spell of the cluster is shared.
  if (( r % 2 )); then order=("$NATIVE" "$ASTS"); else order=("$ASTS" "$NATIVE"); fi
  for set in "${order[@]}"; do run_round "$set" "$r" "$image"; done
done
rss_kib="$(peak_rss_kib "$GRAFT_PID")"
kill "$GRAFT_PID" 2>/dev/null || true
wait "$GRAFT_PID" 2>/dev/null || true
GRAFT_PID=""

# Clean up before the report: the sets, their PVCs (and with them the PVs), the namespace.
kubectl -n "$NS" delete statefulsets.apps.kruise.io "$ASTS" --wait=true >/dev/null
kubectl -n "$NS" delete statefulsets.apps "$NATIVE" --wait=true >/dev/null
kubectl -n "$NS" delete pvc --all --wait=true --timeout=120s >/dev/null \
  || echo "warning: the PVCs of $NS were not deleted in 120 s" >&2
kubectl delete namespace "$NS" --wait=true --timeout=180s >/dev/null \
  || echo "warning: namespace $NS was not deleted in 180 s" >&2
left="$(kubectl get pv -o jsonpath="{range .items[?(@.spec.claimRef.namespace==\"$NS\")]}{.metadata.name} {end}")"
[[ -z "$left" ]] || echo "warning: PVs of $NS left (reclaim in progress?): $left" >&2

# --- the report -------------------------------------------------------------------------------

mean() { # set
  local r s=0
  for (( r = 1; r <= ROUNDS; r++ )); do s="$(awk -v a="$s" -v b="$(cat "$OUT/$1-$r.seconds")" 'BEGIN {print a + b}')"; done
  awk -v s="$s" -v n="$ROUNDS" 'BEGIN {printf "%.1f", s / n}'
}
round_title() { if (( $1 % 2 )); then echo "r$1 v1->v2"; else echo "r$1 v2->v1"; fi; }

echo
echo "StatefulSet rollout: $N pods, podManagementPolicy Parallel, a PVC each, maxUnavailable $MAX_UNAVAILABLE"
echo "  (native StatefulSet: $native_note);"
echo "  app:v1 <-> app:v2 pre-pulled; seconds from the template change to all pods updated and ready,"
echo "  the two sets taking turns"
printf '%-44s' ""
for (( r = 1; r <= ROUNDS; r++ )); do printf '%12s' "$(round_title "$r")"; done
printf '%10s %14s\n' "mean" "vs native"
base="$(mean "$NATIVE")"
for set in "$ASTS" "$NATIVE"; do
  if [[ "$set" == "$ASTS" ]]; then title="Advanced StatefulSet InPlaceIfPossible"; else title="StatefulSet (apps/v1) RollingUpdate"; fi
  printf '%-44s' "$title"
  for (( r = 1; r <= ROUNDS; r++ )); do printf '%10s s' "$(cat "$OUT/$set-$r.seconds")"; done
  printf '%8s s %13sx\n' "$(mean "$set")" "$(ratio "$(mean "$set")" "$base")"
done
printf '%-44s' "ratio ASTS / StatefulSet"
for (( r = 1; r <= ROUNDS; r++ )); do printf '%11sx' "$(ratio "$(cat "$OUT/$ASTS-$r.seconds")" "$(cat "$OUT/$NATIVE-$r.seconds")")"; done
printf '%9sx\n' "$(ratio "$(mean "$ASTS")" "$base")"
echo "graft controllers peak RSS (VmHWM) over the run: $(mib "$rss_kib")"
echo
printf '%-36s %16s %12s %12s %18s %14s %11s\n' "per rollout" "pods recreated" "UIDs kept" "PVCs kept" "most unavailable" "app restarts" "revisions"
problems=()
for set in "$ASTS" "$NATIVE"; do
  for (( r = 1; r <= ROUNDS; r++ )); do
    key="$set-$r"
    created="$(churn_of "$key" created)"
    worst="$(churn_of "$key" max_unavailable)"
    pods_kept="$(cat "$OUT/$key.pods_kept")"
    pvcs_kept="$(cat "$OUT/$key.pvcs_kept")"
    revisions="$(cat "$OUT/$key.revisions")"
    printf '%-36s %16s %12s %12s %18s %14s %11s\n' "$set $(round_title "$r")" "$created" "$pods_kept/$N" "$pvcs_kept/$N" \
      "$worst" "$(cat "$OUT/$key.restarts")" "$revisions"
    (( revisions == 2 )) || problems+=("$key: $set owns $revisions ControllerRevisions, expected 2 (another controller acting on it?)")
    (( pvcs_kept == N )) || problems+=("$key: $pvcs_kept of $N PVCs kept their UID")
    (( worst <= MAX_UNAVAILABLE )) || problems+=("$key: $worst pods unavailable at once (maxUnavailable $MAX_UNAVAILABLE)")
    if [[ "$set" == "$ASTS" ]]; then
      (( created == 0 && pods_kept == N )) || problems+=("$key: the in-place rollout recreated $created pods ($pods_kept of $N kept their UID)")
    else
      (( created == N )) || problems+=("$key: the native rollout recreated $created pods, expected $N")
    fi
  done
done
echo "(pods recreated: new UIDs seen by the watch; most unavailable: pods missing or not Ready at once;"
echo " revisions: the set's ControllerRevisions after the rollout)"
echo
echo "where the time of an in-place pod goes (ASTS round 1, watch receive times; maxUnavailable = $MAX_UNAVAILABLE):"
python3 "$PODWATCH" report --image "$APP_V2" --slots "$MAX_UNAVAILABLE" "graft ASTS=$OUT/$ASTS-1.pods.jsonl"
echo "(graft's log, the watches and per-pod times, $ASTS-1.pods.jsonl.csv: $OUT)"
if (( ${#problems[@]} )); then
  printf 'UNEXPECTED: %s\n' "${problems[@]}" >&2
  exit 1
fi
