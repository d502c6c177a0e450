#!/usr/bin/env bash
# Commit-to-rollout benchmark (issue 8), on the local cluster from deploy/local. Figures are
# printed, never asserted; each is set against a baseline from the same run.
#
#  1. A commit that moves a 10-pod CloneSet (in-place updates) from app:v1 to graft-test/large:v1
#     (~220 MB, removed from the node first): seconds from the commit until the commit is Healthy
#     in the GitSync history, with `prePull.mode: Off` (the kubelet pulls during the rollout) and
#     with `BeforeRollout` (graft pre-pulls, then rolls out). Also the longest time any pod was
#     not ready, the cost a user feels.
#  2. The manager (`graft run` with the in-process node agent, one process) at rest and during a
#     100-pod in-place rollout: resident memory and CPU seconds, next to the cluster's own
#     kube-controller-manager over the same windows.
#
# Usage: bench/commit.sh     (env: N=10, BIG=100, GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
N="${N:-10}"
BIG="${BIG:-100}"
eval "$(deploy/local/cluster env)"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

LARGE="$REGISTRY/graft-test/large:v1"
RUN="$(date +%s)-$$"
WORK="/tmp/graft-bench-commit-$RUN"
mkdir -p "$WORK"
NAMESPACES=()
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The node's NodeImage is shared with the imagepull tests: take the same lock they do.
exec 9>/tmp/graft-nodeimage-tests.lock
flock 9
# shellcheck source=bench/lib/large.sh
source bench/lib/large.sh

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
git_in() { git -C "$1" -c user.email=bench@graft.dev -c user.name=Bench "${@:2}"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

cloneset() { # replicas image
  cat <<YAML
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web}
spec:
  replicas: $1
  selector: {matchLabels: {app: web}}
  updateStrategy: {type: InPlaceIfPossible, maxUnavailable: 50%}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: app
          image: $2
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
YAML
}

# A namespace with `graft run` (controllers, sync, in-process agent) scoped to it, a repository
# and a GitSync with pre-pull mode $2. Sets NS, REPO, MANAGER.
setup() { # name mode
  NS="graft-bench-$1-$RUN"
  kubectl create namespace "$NS" >/dev/null
  kubectl label namespace "$NS" graft.dev/test=true >/dev/null
  NAMESPACES+=("$NS")
  until kubectl -n "$NS" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
  REPO="$WORK/$1"
  mkdir -p "$REPO/deploy"
  git_in "$REPO" init -q -b main
  cloneset "$N" "$REGISTRY/graft-test/app:v1" >"$REPO/deploy/web.yaml"
  git_in "$REPO" add -A && git_in "$REPO" commit -q -m "v1"
  "$GRAFT" run --namespace "$NS" --no-leader-election --with-nodeagent --node-name "$GRAFT_NODE_NAME" \
    --cri-socket "$GRAFT_CRI_SOCKET" --nodeimage-manager=true --nodeimage-creation-delay-seconds 0 \
    --pull-secrets-namespace "$NS" --addr 127.0.0.1:0 \
    --metrics-addr 127.0.0.1:0 --cache-dir "$WORK/cache-$1" --lease-namespace "$NS" \
    >"$WORK/$1.log" 2>&1 &
  MANAGER=$!
  PIDS+=("$MANAGER")
  kubectl -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: graft.dev/v1alpha1
kind: GitSync
metadata: {name: app}
spec: {url: "file://$REPO", ref: {branch: main}, path: deploy, interval: 1h,
       prePull: {mode: "$2", timeoutSeconds: 300}}
YAML
  wait_commit "$(git -C "$REPO" rev-parse HEAD)" 300 >/dev/null
}

# Waits until commit $1 is Healthy (at most $2 seconds); prints the seconds it took.
wait_commit() {
  local t0 deadline phase
  t0=$(now)
  deadline=$(($(date +%s) + $2))
  while (($(date +%s) < deadline)); do
    phase=$(kubectl -n "$NS" get gitsync app -o json | json "
h=[c for c in (d.get('status') or {}).get('history') or [] if c['sha']=='$1']
print(h[0]['phase'] if h else '')")
    case "$phase" in
      Healthy) secs "$t0" "$(now)"; return 0 ;;
      Failed|Superseded) echo "commit $1 ended $phase" >&2; exit 1 ;;
    esac
    sleep 0.2
  done
  echo "commit $1 not healthy after $2s" >&2
  exit 1
}

# Longest seconds any pod of the CloneSet was not ready, sampled every 0.2 s until stopped.
watch_unready() {
  local out=$1
  python3 - "$NS" "$out" <<'PY' &
import json, subprocess, sys, time
ns, out = sys.argv[1], sys.argv[2]
since, worst = {}, 0.0
while True:
    try:
        pods = json.loads(subprocess.run(["kubectl", "-n", ns, "get", "pods", "-l", "app=web", "-o", "json"],
                                         capture_output=True, text=True, timeout=10).stdout)["items"]
    except Exception:
        continue
    t = time.time()
    for p in pods:
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
        uid = p["metadata"]["uid"]
        if ready:
            since.pop(uid, None)
        else:
            since.setdefault(uid, t)
            worst = max(worst, t - since[uid])
    open(out, "w").write("%.1f" % worst)
    time.sleep(0.2)
PY
  WATCHER=$!
  PIDS+=("$WATCHER")
}

bump_to_large() { # name
  remove_large
  echo 0 >"$WORK/unready-$1"
  watch_unready "$WORK/unready-$1"
  cloneset "$N" "$LARGE" >"$REPO/deploy/web.yaml"
  git_in "$REPO" commit -q -am "large"
  local took
  took=$(wait_commit "$(git -C "$REPO" rev-parse HEAD)" 600)
  kill "$WATCHER" 2>/dev/null || true
  echo "$took"
}

echo "== commit -> $N pods updated in place to large:v1 (~220 MB, not on the node)"
setup off Off
off=$(bump_to_large off)
kill "$MANAGER"; kubectl delete namespace "$NS" --wait=true --timeout=180s >/dev/null
setup before BeforeRollout
before=$(bump_to_large before)
printf '   %-34s %7ss   longest a pod was not ready: %ss\n' "prePull Off (kubelet pulls)" "$off" "$(cat "$WORK/unready-off")"
printf '   %-34s %7ss   longest a pod was not ready: %ss   (%s of Off)\n' "prePull BeforeRollout" "$before" \
  "$(cat "$WORK/unready-before")" "$(ratio "$before" "$off")"

echo "== the manager (graft run + in-process node agent) at rest and during a $BIG-pod in-place rollout"
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
KCM=$(pgrep -f '^/var/cache/graft/k8s-[^ ]*/bin/kube-controller-manager' | head -1)
HZ=$(getconf CLK_TCK)
c0=$(cpu "$MANAGER"); k0=$(cpu "$KCM"); sleep 20; c1=$(cpu "$MANAGER"); k1=$(cpu "$KCM")
printf '   at rest (20 s)       graft: %6s MiB, %5.2f CPU-s   kube-controller-manager: %6s MiB, %5.2f CPU-s\n' \
  "$(rss "$MANAGER")" "$(awk -v a="$c0" -v b="$c1" -v h="$HZ" 'BEGIN{print (b-a)/h}')" \
  "$(rss "$KCM")" "$(awk -v a="$k0" -v b="$k1" -v h="$HZ" 'BEGIN{print (b-a)/h}')"
cloneset "$BIG" "$REGISTRY/graft-test/app:v1" >"$REPO/deploy/web.yaml"
git_in "$REPO" commit -q -am "scale to $BIG on app:v1"
up=$(wait_commit "$(git -C "$REPO" rev-parse HEAD)" 900)
c0=$(cpu "$MANAGER"); k0=$(cpu "$KCM")
cloneset "$BIG" "$REGISTRY/graft-test/app:v2" >"$REPO/deploy/web.yaml"
git_in "$REPO" commit -q -am "$BIG pods to app:v2"
roll=$(wait_commit "$(git -C "$REPO" rev-parse HEAD)" 900)
c1=$(cpu "$MANAGER"); k1=$(cpu "$KCM")
printf '   %d-pod rollout (%ss; scale-up took %ss)\n' "$BIG" "$roll" "$up"
printf '      graft: %6s MiB now, %6s MiB peak, %5.2f CPU-s   kube-controller-manager: %6s MiB, %5.2f CPU-s   (graft/kcm CPU %s)\n' \
  "$(rss "$MANAGER")" "$(hwm "$MANAGER")" "$(awk -v a="$c0" -v b="$c1" -v h="$HZ" 'BEGIN{print (b-a)/h}')" \
  "$(rss "$KCM")" "$(awk -v a="$k0" -v b="$k1" -v h="$HZ" 'BEGIN{print (b-a)/h}')" \
  "$(ratio "$((c1 - c0))" "$((k1 - k0))")"
