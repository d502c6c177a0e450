#!/usr/bin/env bash
# Git sync benchmark (issue 5), on the local cluster from deploy/local. Figures are printed,
# never asserted; each is set against a baseline run in the same invocation.
#
#  1. Apply of N objects (ConfigMaps, Services, ServiceAccounts) from a Git repository:
#     `graft sync --once` (fetch + render + server-side dry-run of everything + apply) vs
#     `kubectl apply --server-side` of the same files, each into a fresh namespace.
#  2. A no-op resync of the unchanged commit: time and API requests, vs a no-op
#     `kubectl apply --server-side` of the same files.
#  3. Push-to-applied latency of a one-line change, via a signed push webhook (repository on a
#     `git daemon`, polling at 1h) and via the file watch (local repository), vs the time
#     `kubectl apply --server-side` takes to apply that same change by hand.
#
# Usage: bench/sync.sh     (env: N=1000, RUNS=3, GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
N="${N:-1000}"
RUNS="${RUNS:-3}"
eval "$(deploy/local/cluster env)"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

RUN="$(date +%s)-$$"
WORK="/tmp/graft-bench-sync-$RUN"
mkdir -p "$WORK"
NAMESPACES=()
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

new_namespace() {
  NS="graft-bench-$1-$RUN"
  kubectl create namespace "$NS" >/dev/null
  kubectl label namespace "$NS" graft.dev/test=true >/dev/null
  NAMESPACES+=("$NS")
}

git_in() { git -C "$1" -c user.email=bench@graft.dev -c user.name=Bench "${@:2}"; }

# ---- 1 and 2: N objects -------------------------------------------------------------------
REPO="$WORK/objects"
mkdir -p "$REPO/deploy"
git_in "$REPO" init -q -b main
cm=$((N * 8 / 10)); svc=$((N / 10)); sa=$((N - cm - svc))
for i in $(seq 1 "$cm"); do
  printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  labels: {bench: sync}\ndata:\n  index: "%d"\n  text: "the quick brown fox jumps over the lazy dog"\n' "$i" "$i"
done > "$REPO/deploy/configmaps.yaml"
for i in $(seq 1 "$svc"); do
  printf -- '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-%d\nspec:\n  selector: {app: svc-%d}\n  ports: [{port: 80, targetPort: 8080}]\n' "$i" "$i"
done > "$REPO/deploy/services.yaml"
for i in $(seq 1 "$sa"); do
  printf -- '---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-%d\n' "$i"
done > "$REPO/deploy/serviceaccounts.yaml"
git_in "$REPO" add -A && git_in "$REPO" commit -q -m "$N objects"

echo "== apply of $N objects ($cm ConfigMaps, $svc Services, $sa ServiceAccounts)"
new_namespace kubectl; NS_K="$NS"
t0=$(now); kubectl apply --server-side -n "$NS_K" -R -f "$REPO/deploy" >/dev/null; t1=$(now)
kubectl_apply=$(secs "$t0" "$t1")
new_namespace graft; NS_G="$NS"
t0=$(now)
out=$("$GRAFT" sync --once --repo "file://$REPO" --path deploy --name bench --namespace "$NS_G" --cache-dir "$WORK/cache" 2>/dev/null | grep '^synced')
t1=$(now)
graft_apply=$(secs "$t0" "$t1")
echo "   kubectl apply --server-side : ${kubectl_apply}s"
echo "   graft sync --once           : ${graft_apply}s  ($(ratio "$graft_apply" "$kubectl_apply") of kubectl)  [$out]"

echo "== no-op resync of the unchanged commit"
t0=$(now); kubectl apply --server-side -n "$NS_K" -R -f "$REPO/deploy" >/dev/null; t1=$(now)
kubectl_noop=$(secs "$t0" "$t1")
t0=$(now)
out=$("$GRAFT" sync --once --repo "file://$REPO" --path deploy --name bench --namespace "$NS_G" --cache-dir "$WORK/cache" 2>/dev/null | grep '^synced')
t1=$(now)
graft_noop=$(secs "$t0" "$t1")
requests=$(sed -n 's/.*; \([0-9]*\) API requests, \([0-9]*\) writes.*/\1 requests, \2 writes/p' <<<"$out")
echo "   kubectl apply --server-side : ${kubectl_noop}s ($N objects sent, $N writes)"
echo "   graft sync --once           : ${graft_noop}s  ($(ratio "$graft_noop" "$kubectl_noop") of kubectl)  API: $requests"
kubectl delete namespace "$NS_K" "$NS_G" --wait=false >/dev/null

# ---- 3: push-to-applied latency ------------------------------------------------------------
"$GRAFT" crds | kubectl apply --server-side -f - >/dev/null
new_namespace latency; NS_L="$NS"
HOOK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DAEMON_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SECRET="bench-secret"
"$GRAFT" sync --watch-namespace "$NS_L" --webhook-addr "127.0.0.1:$HOOK_PORT" --webhook-secret "$SECRET" \
  --cache-dir "$WORK/cache-latency" >"$WORK/sync.log" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/git"
for r in hooked watched; do
  mkdir -p "$WORK/git/$r/deploy"
  git_in "$WORK/git/$r" init -q -b main
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  round: "0"\n' "$r" > "$WORK/git/$r/deploy/cm.yaml"
  git_in "$WORK/git/$r" add -A && git_in "$WORK/git/$r" commit -q -m "round 0"
done
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --listen=127.0.0.1 --port="$DAEMON_PORT" --base-path="$WORK/git" "$WORK/git" 2>/dev/null &
PIDS+=($!)
HOOK_URL="git://127.0.0.1:$DAEMON_PORT/hooked"
kubectl -n "$NS_L" apply --server-side -f - >/dev/null <<EOF
apiVersion: graft.dev/v1alpha1
kind: GitSync
metadata: {name: hooked}
spec: {url: "$HOOK_URL", ref: {branch: main}, path: deploy, interval: 1h}
---
apiVersion: graft.dev/v1alpha1
kind: GitSync
metadata: {name: watched}
spec: {url: "file://$WORK/git/watched", ref: {branch: main}, path: deploy, interval: 1h}
EOF
for r in hooked watched; do
  for _ in $(seq 1 300); do kubectl -n "$NS_L" get configmap "$r" >/dev/null 2>&1 && break; sleep 0.2; done
  kubectl -n "$NS_L" wait --for=jsonpath='{.data.round}'=0 "configmap/$r" --timeout=60s >/dev/null
done
sleep 3   # let the first syncs' status writes settle

# Waits (in the background) until configmap $1 has round $2; run it before the change.
await_round() {
  kubectl -n "$NS_L" wait --for=jsonpath="{.data.round}=$2" "configmap/$1" --timeout=60s >/dev/null &
  WAITER=$!
  sleep 0.5
}
commit_round() {
  sed -i "s/round: \"[0-9]*\"/round: \"$2\"/" "$WORK/git/$1/deploy/cm.yaml"
  git_in "$WORK/git/$1" commit -q -am "round $2"
}
hook_times=(); watch_times=(); kubectl_times=()
for i in $(seq 1 "$RUNS"); do
  await_round hooked "$i"
  t0=$(now)
  commit_round hooked "$i"
  sha=$(git -C "$WORK/git/hooked" rev-parse HEAD)
  body="{\"url\": \"$HOOK_URL\", \"ref\": \"refs/heads/main\", \"commit\": \"$sha\"}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -H "X-Graft-Signature: sha256=$sig" \
    --data-binary "$body" "http://127.0.0.1:$HOOK_PORT/hook"
  wait "$WAITER"; t1=$(now)
  hook_times+=("$(secs "$t0" "$t1")")

  await_round watched "$i"
  t0=$(now)
  commit_round watched "$i"
  wait "$WAITER"; t1=$(now)
  watch_times+=("$(secs "$t0" "$t1")")

  # Baseline: the same one-line change applied by hand.
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: by-hand\ndata:\n  round: "%s"\n' "$i" > "$WORK/by-hand.yaml"
  t0=$(now); kubectl -n "$NS_L" apply --server-side -f "$WORK/by-hand.yaml" >/dev/null; t1=$(now)
  kubectl_times+=("$(secs "$t0" "$t1")")
  sleep 3   # the GitSyncs' own status writes
done
hook=$(printf '%s\n' "${hook_times[@]}" | median)
watch=$(printf '%s\n' "${watch_times[@]}" | median)
by_hand=$(printf '%s\n' "${kubectl_times[@]}" | median)
echo "== push-to-applied latency of a one-line change (median of $RUNS)"
echo "   kubectl apply --server-side by hand : ${by_hand}s   (${kubectl_times[*]})"
echo "   signed webhook (git daemon)         : ${hook}s  ($(ratio "$hook" "$by_hand") of kubectl)   (${hook_times[*]})"
echo "   file watch (local repository)       : ${watch}s  ($(ratio "$watch" "$by_hand") of kubectl)   (${watch_times[*]})"
echo "   (polling alone would take up to the interval: 1m by default, Flux/Argo CD 1-3 min)"
