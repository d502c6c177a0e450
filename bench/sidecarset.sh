#!/usr/bin/env bash
# SidecarSet benchmark (issue 14), on the local cluster from deploy/local.
#
# 1. A sidecar upgrade (sidecar:v1 -> sidecar:v2) of N pods, maxUnavailable 20%:
#    (a) in place by a SidecarSet on the pods of a CloneSet (the app container keeps running),
#    (b) the baseline: the same sidecar as the second container of the CloneSet's template, the
#        image changed there with updateStrategy ReCreate (every pod recreated),
#    each timed from the change until all N pods run sidecar:v2 and are ready.
# 2. The added pod-create latency of graft's pod webhook: M pod creates (server-side dry run, so
#    the admission chain runs and nothing is scheduled) with graft's webhook answering, with graft
#    killed and its configuration left in place (failurePolicy Ignore: the API server's call is
#    refused at once), and with no webhook configuration at all (the baseline).
# Prints the figures with their ratios to the baselines; figures are never asserted.
#
# Usage: bench/sidecarset.sh    (env: N=30, M=50, GRAFT=<graft binary>, default the release build)
set -euo pipefail

cd "$(dirname "$0")/.."
eval "$(deploy/local/cluster env)"
source bench/lib/rollout.sh
M="${M:-50}"
GRAFT="${GRAFT:-${CARGO_TARGET_DIR:-/var/cache/graft/target}/release/graft}"
[[ -x "$GRAFT" ]] || { echo "no graft binary at $GRAFT (run: cargo build --release --bin graft)" >&2; exit 1; }
kubectl version >/dev/null || { echo "the local cluster is not running: deploy/local/cluster up" >&2; exit 1; }

SIDECAR_V1="$REGISTRY/graft-test/sidecar:v1"
SIDECAR_V2="$REGISTRY/graft-test/sidecar:v2"
OUT="/tmp/graft-bench-sidecarset-$RUN"
mkdir -p "$OUT"
GRAFT_PID=""
PROXY_PID=""
SIDECARSET="graft-bench-log-$RUN"
WEBHOOK_CONFIG="graft-bench-$RUN"

cleanup() {
  if [[ -n "$GRAFT_PID" ]]; then kill "$GRAFT_PID" 2>/dev/null || true; fi
  if [[ -n "$PROXY_PID" ]]; then kill "$PROXY_PID" 2>/dev/null || true; fi
  kubectl delete sidecarset "$SIDECARSET" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete validatingwebhookconfiguration "$WEBHOOK_CONFIG" --ignore-not-found >/dev/null 2>&1 || true
  rollout_cleanup
}
trap cleanup EXIT

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$GRAFT_HOST_IP"; }

# graft controllers for NS with its admission server on the host address, where the API server
# reaches it; returns once its webhook configuration is in place.
graft_start() { # namespace
  local port
  port="$(free_port)"
  "$GRAFT" controllers --namespace "$1" --metrics-addr 127.0.0.1:0 \
    --admission-addr "$GRAFT_HOST_IP:$port" --admission-url "https://$GRAFT_HOST_IP:$port" \
    --admission-namespace "$1" --admission-config-name "$WEBHOOK_CONFIG" >"$OUT/controllers-$1.log" 2>&1 &
  GRAFT_PID=$!
  local deadline=$(( $(date +%s) + 60 ))
  until kubectl get mutatingwebhookconfiguration "$WEBHOOK_CONFIG" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null | grep -q .; do
    (( $(date +%s) < deadline )) || { echo "graft's webhook configuration did not appear in 60 s ($OUT/controllers-$1.log)" >&2; return 1; }
    sleep 0.2
  done
}

graft_stop() {
  kill -9 "$GRAFT_PID" 2>/dev/null || true
  wait "$GRAFT_PID" 2>/dev/null || true
  GRAFT_PID=""
}

# The CloneSet's pod template with the sidecar as a second container (the baseline) or without it.
template_with_sidecar() { # app-image sidecar-image
  template "$1"
  cat <<EOF
        - name: log
          image: $2
          imagePullPolicy: IfNotPresent
          resources: {requests: {cpu: 1m, memory: 8Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 9090}, periodSeconds: 1}
EOF
}

cloneset_of() { # name strategy-type template...
  cat <<EOF
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: $1}
spec:
  replicas: $N
  selector: {matchLabels: {app: bench}}
  updateStrategy: {type: $2, maxUnavailable: "20%"}
  template:
$3
EOF
}

sidecarset() { # namespace image
  cat <<EOF
apiVersion: apps.kruise.io/v1beta1
kind: SidecarSet
metadata: {name: $SIDECARSET}
spec:
  selector: {matchLabels: {app: bench}}
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $1}}
  updateStrategy: {type: RollingUpdate, maxUnavailable: "20%"}
  containers:
    - name: log
      image: $2
      imagePullPolicy: IfNotPresent
      resources: {requests: {cpu: 1m, memory: 8Mi}}
      readinessProbe: {httpGet: {path: /readyz, port: 9090}, periodSeconds: 1}
EOF
}

# Until all N pods of NS run IMAGE in their `log` container and are ready (and no other pod is left).
wait_sidecar() { # namespace image timeout-seconds
  local deadline=$(( $(date +%s) + $3 )) got
  while :; do
    got="$(kubectl -n "$1" get pods -o json | python3 -c '
import json, sys
image, n = sys.argv[1], int(sys.argv[2])
pods = json.load(sys.stdin)["items"]
def done(p):
    if p["metadata"].get("deletionTimestamp"):
        return False
    st = {c["name"]: c for c in p["status"].get("containerStatuses") or []}
    spec = {c["name"]: c["image"] for c in p["spec"]["containers"]}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    log = st.get("log", {})
    return ready and spec.get("log") == image and log.get("ready") and log.get("image", "").endswith(image.rsplit("/", 1)[-1])
print(f"{sum(done(p) for p in pods)} {len(pods)}")' "$2" "$N")"
    read -r ok total <<<"$got"
    [[ "$ok" == "$N" && "$total" == "$N" ]] && return 0
    if (( $(date +%s) > deadline )); then
      echo "timed out waiting for $N pods on $2 in $1: $ok of $total" >&2
      return 1
    fi
    sleep 0.25
  done
}

restarts_of_app() { # namespace
  kubectl -n "$1" get pods -o jsonpath='{range .items[*]}{range .status.containerStatuses[?(@.name=="app")]}{.restartCount}{"\n"}{end}{end}' \
    | awk '{s += $1} END {print s + 0}'
}

seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f\n", b - a}'; }

echo "SidecarSet benchmark: $N pods, sidecar:v1 -> sidecar:v2, maxUnavailable 20%; $M pod creates per admission case (graft: $GRAFT)" >&2
kubectl apply --server-side --force-conflicts -f deploy/crds/ >/dev/null
kubectl wait --for=condition=Established crd/clonesets.apps.kruise.io crd/sidecarsets.apps.kruise.io --timeout=60s >/dev/null
prepull
APP_V1_SAVED="$APP_V1" APP_V2_SAVED="$APP_V2"
APP_V1="$SIDECAR_V1" APP_V2="$SIDECAR_V2" prepull
APP_V1="$APP_V1_SAVED" APP_V2="$APP_V2_SAVED"

# (a) in place, by the SidecarSet.
new_namespace sidecar
ns_a="$NS"
graft_start "$ns_a"
sidecarset "$ns_a" "$SIDECAR_V1" | kubectl apply -f - >/dev/null
cloneset_of bench InPlaceIfPossible "$(template "$APP_V1")" | kubectl -n "$ns_a" apply -f - >/dev/null
wait_sidecar "$ns_a" "$SIDECAR_V1" 300
uids_before="$(kubectl -n "$ns_a" get pods -o jsonpath='{.items[*].metadata.uid}' | tr ' ' '\n' | sort)"
restarts_before="$(restarts_of_app "$ns_a")"
t0="$(now)"
kubectl patch sidecarset "$SIDECARSET" --type=json \
  -p "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\",\"value\":\"$SIDECAR_V2\"}]" >/dev/null
wait_sidecar "$ns_a" "$SIDECAR_V2" 600
inplace_s="$(seconds_since "$t0")"
uids_after="$(kubectl -n "$ns_a" get pods -o jsonpath='{.items[*].metadata.uid}' | tr ' ' '\n' | sort)"
same_pods="$(comm -12 <(echo "$uids_before") <(echo "$uids_after") | grep -c . || true)"
app_restarts=$(( $(restarts_of_app "$ns_a") - restarts_before ))
rss_kib="$(peak_rss_kib "$GRAFT_PID")"
echo "  in place by the SidecarSet: $inplace_s s" >&2

# 2. pod-create latency, in the same namespace (the webhook covers it): graft up, then down.
kubectl proxy --port=0 >"$OUT/proxy.log" 2>&1 &
PROXY_PID=$!
until grep -q "Starting to serve" "$OUT/proxy.log" 2>/dev/null; do sleep 0.1; done
PROXY="$(sed -n 's/.*Starting to serve on \(.*\)$/\1/p' "$OUT/proxy.log")"
create_latency() { # namespace label
  python3 - "$PROXY" "$1" "$M" "$2" <<'EOF'
import json, sys, time, urllib.request
proxy, ns, m, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"generateName": "latency-", "labels": {"app": "bench"}},
       "spec": {"containers": [{"name": "app", "image": "graft-test/app:v1"}]}}
body = json.dumps(pod).encode()
url = f"http://{proxy}/api/v1/namespaces/{ns}/pods?dryRun=All"
times, injected = [], 0
for i in range(m + 3):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        out = json.load(r)
    dt = (time.perf_counter() - t) * 1000
    if i >= 3:  # the first requests warm connections up
        times.append(dt)
        injected += any(c["name"] == "log" for c in out["spec"]["containers"])
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"{p(0.5):.1f} {p(0.99):.1f} {injected}")
EOF
}
read -r up_p50 up_p99 up_injected <<<"$(create_latency "$ns_a" up)"
graft_stop
read -r down_p50 down_p99 down_injected <<<"$(create_latency "$ns_a" down)"
kubectl delete mutatingwebhookconfiguration "$WEBHOOK_CONFIG" --ignore-not-found >/dev/null
kubectl delete validatingwebhookconfiguration "$WEBHOOK_CONFIG" --ignore-not-found >/dev/null
sleep 1 # the API server drops a deleted configuration from its cache within a second
read -r none_p50 none_p99 none_injected <<<"$(create_latency "$ns_a" none)"
kubectl delete sidecarset "$SIDECARSET" --ignore-not-found >/dev/null
kubectl delete namespace "$ns_a" --wait=true >/dev/null

# (b) the baseline: the CloneSet recreates its pods with the new sidecar.
new_namespace recreate
ns_b="$NS"
"$GRAFT" controllers --namespace "$ns_b" --metrics-addr 127.0.0.1:0 >"$OUT/controllers-$ns_b.log" 2>&1 &
GRAFT_PID=$!
cloneset_of bench ReCreate "$(template_with_sidecar "$APP_V1" "$SIDECAR_V1")" | kubectl -n "$ns_b" apply -f - >/dev/null
wait_sidecar "$ns_b" "$SIDECAR_V1" 300
t0="$(now)"
kubectl -n "$ns_b" patch cloneset bench --type=json \
  -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/1/image\",\"value\":\"$SIDECAR_V2\"}]" >/dev/null
wait_sidecar "$ns_b" "$SIDECAR_V2" 600
recreate_s="$(seconds_since "$t0")"
graft_stop
kubectl delete namespace "$ns_b" --wait=true >/dev/null
echo "  recreated by the CloneSet: $recreate_s s" >&2

echo
printf '%-48s %10s %16s\n' "sidecar upgrade ($N pods)" "seconds" "vs recreating"
printf '%-48s %10s %16s\n' "SidecarSet in place" "$inplace_s" "$(ratio "$inplace_s" "$recreate_s")x"
printf '%-48s %10s %16s\n' "CloneSet ReCreate of the same pods (baseline)" "$recreate_s" "1.00x"
echo "  in place: $same_pods of $N pods kept their UID, app container restarts $app_restarts, graft peak RSS $(mib "$rss_kib")"
echo
printf '%-48s %16s %16s %10s\n' "pod create, server-side dry run ($M each)" "p50 / p99 ms" "p50 vs none" "injected"
printf '%-48s %16s %16s %10s\n' "graft's webhook answering" "$up_p50 / $up_p99" "$(ratio "$up_p50" "$none_p50")x" "$up_injected/$M"
printf '%-48s %16s %16s %10s\n' "graft down, its configuration in place" "$down_p50 / $down_p99" "$(ratio "$down_p50" "$none_p50")x" "$down_injected/$M"
printf '%-48s %16s %16s %10s\n' "no webhook configuration (baseline)" "$none_p50 / $none_p99" "1.00x" "$none_injected/$M"
echo "(logs: $OUT)"
