#!/usr/bin/env python3
# The kubelet's side of an in-place image change, measured on a bare pod with the InPlaceUpdateReady
# readiness gate (what graft's in-place engine decides when to open it, controllers/src/inplace/update.rs
# gate_may_open_early). Usage: bench/kubelet-gate.py NAMESPACE MODE REGISTRY, with a pod `exp` at app:v1
# and the gate True; MODE running = gate True once the new container runs (OpenKruise), observed =
# gate True once status.observedGeneration reached the patch (graft). Prints the pod's statuses in ms.
# Kubelet timeline of one in-place image change on a bare pod with the InPlaceUpdateReady gate.
# mode: "running" = gate True when the new container is seen running (what graft/kruise do);
#       "first" = gate True at the first kubelet status after the patch showing the app not ready.
import json, subprocess, sys, time, threading
ns, mode, reg = sys.argv[1], sys.argv[2], sys.argv[3]
name = "exp"
def k(*a, inp=None):
    return subprocess.run(["kubectl", "-n", ns, *a], input=inp, capture_output=True, text=True, check=True).stdout
def gate(status):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    k("patch", "pod", name, "--subresource=status", "--type=strategic", "-p", json.dumps({"status": {"conditions": [
        {"type": "InPlaceUpdateReady", "status": status, "lastTransitionTime": now}]}}))
t0 = None
events = []
def mark(what):
    events.append((time.time(), what))
w = subprocess.Popen(["kubectl", "-n", ns, "get", "pod", name, "-w", "-o", "json", "--output-watch-events"], stdout=subprocess.PIPE, text=True)
def reader():
    buf = ""
    dec = json.JSONDecoder()
    for line in w.stdout:
        buf += line
        try:
            ev, _ = dec.raw_decode(buf.strip()); buf = ""
        except ValueError:
            continue
        yield ev["object"]
gen = reader()
# wait Ready first
for pod in gen:
    conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    if conds.get("Ready") == "True":
        break
gate("False")
for pod in gen:
    conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    if conds.get("Ready") == "False": break
old_id = pod["status"]["containerStatuses"][0].get("containerID")
t0 = time.time()
gen_after = json.loads(k("patch", "pod", name, "-o", "json", "--type=json", "-p", json.dumps([{"op": "replace", "path": "/spec/containers/0/image", "value": f"{reg}/graft-test/app:v2"}])))["metadata"]["generation"]
mark("patched")
sent = False
for pod in gen:
    cs = pod["status"]["containerStatuses"][0]
    conds = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    st = list(cs.get("state", {}).keys())[0]
    mark(f"status: id={'new' if cs.get('containerID') != old_id else 'old'} state={st} ready={cs.get('ready')} Ready={conds.get('Ready')} gate={conds.get('InPlaceUpdateReady')} og={pod['status'].get('observedGeneration')}")
    if not sent and ((mode == "running" and cs.get("containerID") != old_id and st == "running") or (mode == "first" and not cs.get("ready")) or (mode == "observed" and pod["status"].get("observedGeneration", 0) >= gen_after)):
        gate("True"); mark("gate True sent"); sent = True
    if sent and conds.get("Ready") == "True":
        break
w.kill()
for t, what in events:
    print(f"{(t - t0)*1000:8.0f} ms  {what}")
