# The rollout cases shared by bench/rollout.sh (graft) and bench/kruise.sh (OpenKruise); sourced.
#
# The same image change (app:v1 -> app:v2) on N pods with maxUnavailable 20%, as a CloneSet with
# InPlaceIfPossible, a CloneSet with ReCreate, or a Deployment with RollingUpdate (maxSurge 0),
# each in a fresh namespace, timed from the spec change until all N pods are updated and ready.
# An in-place case also records every pod's rollout state from a watch (bench/lib/podwatch.py).
#
# The caller defines controller_start NS (before the CloneSet is created), controller_stop (after
# its rollout) and controller_pid (the process whose peak RSS is read), and sets OUT, the
# directory for the results: OUT/<key>.seconds, OUT/<key>.rss_kib, OUT/<key>.pods.jsonl.

N="${N:-30}"
SLOTS=$(( (N * 20 + 99) / 100 ))
APP_V1="$REGISTRY/graft-test/app:v1"
APP_V2="$REGISTRY/graft-test/app:v2"
RUN="${RUN:-$(date +%s)-$$}"
PODWATCH="$(dirname "${BASH_SOURCE[0]}")/podwatch.py"
NAMESPACES=()
WATCH_PID=""

# Stops the watcher and deletes the namespaces this run made (for the caller's EXIT trap).
rollout_cleanup() {
  if [[ -n "$WATCH_PID" ]]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
}

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

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Record every pod's state in NS (only those matching SELECTOR, if given) into FILE until
# stop_watch; returns once the N pods are listed.
start_watch() { # namespace file [selector]
  rm -f "$2" "$2.ready"
  python3 "$PODWATCH" watch "$1" "$2" --expect "$N" ${3:+--selector "$3"} &
  WATCH_PID=$!
  local deadline=$(( $(date +%s) + 60 ))
  until [[ -e "$2.ready" ]]; do
    (( $(date +%s) < deadline )) || { echo "the pod watcher on $1 saw fewer than $N pods in 60 s" >&2; return 1; }
    sleep 0.1
  done
}

stop_watch() {
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
}

run_case() { # key kind [cloneset update strategy type]
  local key="$1" kind="$2" ns name=bench watch=""
  new_namespace "$key"
  ns="$NS"
  if [[ "$kind" == cloneset ]]; then
    controller_start "$ns"
    cloneset "$name" "$3" | kubectl -n "$ns" apply -f - >/dev/null
    [[ "$3" == InPlaceIfPossible ]] && watch="$OUT/$key.pods.jsonl"
  else
    deployment "$name" | kubectl -n "$ns" apply -f - >/dev/null
  fi
  wait_rolled_out "$kind" "$name" "$ns" 300
  [[ -n "$watch" ]] && start_watch "$ns" "$watch"
  local t0 t1
  [[ -n "$watch" ]] && python3 "$PODWATCH" mark "$watch" start
  t0="$(now)"
  kubectl -n "$ns" patch "$kind" "$name" --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"$APP_V2\"}]" >/dev/null
  wait_rolled_out "$kind" "$name" "$ns" 600
  t1="$(now)"
  [[ -n "$watch" ]] && stop_watch
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", b - a}' >"$OUT/$key.seconds"
  if [[ "$kind" == cloneset ]]; then
    peak_rss_kib "$(controller_pid)" >"$OUT/$key.rss_kib"
    controller_stop
  fi
  kubectl delete namespace "$ns" --wait=true >/dev/null
  echo "  $key: $(cat "$OUT/$key.seconds") s" >&2
}

seconds_of() { cat "$OUT/$1.seconds"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
