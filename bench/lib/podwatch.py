#!/usr/bin/env python3
"""Per-pod timeline of an in-place rollout, from a watch on the pods (bench/rollout.sh, bench/kruise.sh).

  podwatch.py watch NS FILE [--expect N] [--selector SELECTOR]
      Runs `kubectl get pods -w` on NS (only the pods matching the label SELECTOR, if given) and
      appends one JSON line to FILE for every change of a pod's rollout state, stamped with the time
      this process received it (ms; conditions only carry seconds). Touches FILE.ready once N pods
      have been seen. Stops on SIGTERM.
  podwatch.py mark FILE NAME
      Appends {"mark": NAME, "t": now} to FILE (the bench marks "start" right before the spec change).
  podwatch.py report --image IMAGE --slots B LABEL=FILE [LABEL=FILE ...]
      For each pod of each run: decision (InPlaceUpdateReady=False, or the spec patch if that comes
      first), spec patch (container image is IMAGE), container restarted (new container running),
      container ready, recorded (InPlaceUpdateReady=True), pod Ready, and the decision that reuses
      the slot the pod freed (decision k+B, in order, takes the slot of the k-th pod to become Ready;
      B = maxUnavailable). Prints p50/p99 of each phase, the runs side by side, and writes the
      per-pod times (seconds after the start mark) next to each FILE as FILE.csv.
  podwatch.py spans --image IMAGE FILE
      For a rollout of many pods (bench/scale.sh): of the pods present at the start mark, when each
      one's spec first showed IMAGE (patched) and when its container status showed IMAGE with the
      pod Ready and InPlaceUpdateReady not False (updated), in seconds after the mark. Prints one
      JSON object: {"pods": N, "patched": {"n", "p50", "p99", "last"}, "updated": {...}}.
  podwatch.py churn FILE
      For a rollout of pods with stable names (bench/statefulset.sh): of the pods present at the
      start mark, how many were deleted, how many pods were created after it (new UIDs: recreated),
      and the most of those pod names unavailable at once (no live pod of that name, or one not
      Ready) from the start mark to the "done" mark (or the end of FILE). Prints one JSON object:
      {"pods": N, "deleted": D, "created": C, "max_unavailable": U}.
"""
import json
import os
import signal
import subprocess
import sys
import time

CONTAINER = "app"


def now_ms():
    return time.time() * 1000.0


def condition(pod, kind):
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status"), c.get("lastTransitionTime")
    return None, None


def state_of(pod):
    """The fields of a pod that the breakdown reads."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    image = next((c.get("image") for c in spec.get("containers", []) if c.get("name") == CONTAINER), None)
    cs = next((c for c in status.get("containerStatuses") or [] if c.get("name") == CONTAINER), {})
    running = (cs.get("state") or {}).get("running")
    ipu, ipu_ltt = condition(pod, "InPlaceUpdateReady")
    ready, ready_ltt = condition(pod, "Ready")
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    try:
        ipu_state = json.loads(annotations.get("apps.kruise.io/inplace-update-state", "{}"))
    except ValueError:
        ipu_state = {}
    return {
        "pod": meta.get("name"),
        "uid": meta.get("uid"),
        "deleted": bool(meta.get("deletionTimestamp")),
        "rev": labels.get("controller-revision-hash"),
        "image": image,
        "ipu": ipu,
        "ipu_ltt": ipu_ltt,
        "ready": ready,
        "ready_ltt": ready_ltt,
        "restarts": cs.get("restartCount"),
        "started": running.get("startedAt") if running else None,
        "cready": cs.get("ready"),
        "status_image": cs.get("image"),
        "update_ts": ipu_state.get("updateTimestamp"),
    }


def append(fd, record):
    os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


def watch(ns, path, expect, selector=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    cmd = ["kubectl", "-n", ns, "get", "pods", "-w", "--output-watch-events", "-o", "json"]
    if selector:
        cmd += ["-l", selector]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)

    def stop(*_):
        proc.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    decoder = json.JSONDecoder()
    buf, last, seen, signalled = "", {}, set(), False
    while True:
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        if not chunk:
            break
        t = now_ms()
        buf += chunk.decode()
        while True:
            buf = buf.lstrip()
            try:
                event, end = decoder.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            obj = event.get("object") or {}
            # kubectl prints the initial list in chunks of 500 as one event per chunk, each a
            # PodList (seen with 3,000 pods); later events carry one pod each.
            pods = obj.get("items") or [] if obj.get("kind", "").endswith("List") else [obj]
            for pod in pods:
                state = state_of(pod)
                state["deleted"] = state["deleted"] or event.get("type") == "DELETED"
                key = state["uid"]
                if key is None:
                    continue
                if last.get(key) != state:
                    last[key] = state
                    append(fd, dict(state, t=t))
                seen.add(key)
            if expect and not signalled and len(seen) >= expect:
                open(path + ".ready", "w").close()
                signalled = True
    proc.wait()


def mark(path, name):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    append(fd, {"mark": name, "t": now_ms()})


def pod_times(records, image, start):
    """The instants (ms) of one in-place rollout, per pod name."""
    pods, base = {}, {}
    for r in records:
        if "mark" in r:
            continue
        if r["t"] < start:
            base[r["pod"]] = r
            continue
        p = pods.setdefault(r["pod"], {"base": base.get(r["pod"], r)})
        t = r["t"]

        def once(key, cond):
            if key not in p and cond:
                p[key] = t

        once("marked", r["ipu"] == "False")
        once("patch", r["image"] == image)
        if "patch" in p:
            before = p["base"]
            new_container = r["started"] is not None and (
                r["restarts"] != before["restarts"] or r["started"] != before["started"]
            )
            once("restarted", new_container)
        if "restarted" in p:
            once("cready", bool(r["cready"]))
            once("recorded", r["ipu"] == "True" and t >= p["patch"])
            once("ready", r["ready"] == "True")
    out = {}
    for name, p in pods.items():
        if "patch" not in p:
            continue
        p["decision"] = min(p.get("marked", p["patch"]), p["patch"])
        out[name] = p
    return out


def with_next_decisions(pods, slots):
    """Each pod's `next`: the decision that took the slot the pod freed when it became Ready."""
    decisions = sorted(p["decision"] for p in pods.values())
    readies = sorted((p["ready"], name) for name, p in pods.items() if "ready" in p)
    for k, (ready, name) in enumerate(readies):
        if k + slots < len(decisions):
            pods[name]["next"] = decisions[k + slots]


def phases(p):
    """Phase durations (ms) of one pod; absent when an instant was not seen."""
    out = {}

    def span(key, a, b):
        if a in p and b in p:
            out[key] = p[b] - p[a]

    span("decide_patch", "decision", "patch")
    span("patch_restart", "patch", "restarted")
    span("restart_cready", "restarted", "cready")
    span("restart_recorded", "restarted", "recorded")
    if all(k in p for k in ("cready", "recorded", "ready")):
        out["both_ready"] = p["ready"] - max(p["cready"], p["recorded"])
        # The pod waited for the controller only when it recorded the update after the container
        # was ready (the readiness gate holds Ready until then).
        out["waited_recorded"] = max(0.0, p["recorded"] - p["cready"])
    span("ready_next", "ready", "next")
    span("decide_ready", "decision", "ready")
    if "decide_patch" in out and "waited_recorded" in out:
        out["own"] = out["decide_patch"] + out["waited_recorded"] + out.get("ready_next", 0.0)
    return out


ROWS = [
    ("decide_patch", "decision -> spec patch (controller)"),
    ("patch_restart", "spec patch -> new container running (kubelet)"),
    ("restart_cready", "container running -> container ready (probe)"),
    ("restart_recorded", "container running -> InPlaceUpdateReady=True (controller)"),
    ("both_ready", "both -> pod Ready (kubelet)"),
    ("ready_next", "pod Ready -> next pod's decision (controller)"),
    ("decide_ready", "one pod: decision -> pod Ready"),
    ("own", "controller's own time per pod (*)"),
]


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    rank = max(1, -(-len(values) * q // 100))  # nearest rank
    return values[int(rank) - 1]


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.0f} ms" if abs(v) < 10000 else f"{v / 1000:.1f} s"


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def report(args):
    image, slots, runs = None, 1, []
    i = 0
    while i < len(args):
        if args[i] == "--image":
            image, i = args[i + 1], i + 2
        elif args[i] == "--slots":
            slots, i = int(args[i + 1]), i + 2
        else:
            label, path = args[i].split("=", 1)
            runs.append((label, path))
            i += 1
    results = []
    for label, path in runs:
        records = load(path)
        start = next((r["t"] for r in records if r.get("mark") == "start"), 0.0)
        pods = pod_times(records, image, start)
        with_next_decisions(pods, slots)
        per_pod = {name: phases(p) for name, p in pods.items()}
        write_csv(path + ".csv", pods, start)
        results.append((label, len(pods), per_pod))
    width = 60
    head = f"{'phase (per pod)':<{width}}" + "".join(f"{f'{l} p50 / p99 (n={n})':>30}" for l, n, _ in results)
    print(head)
    for key, title in ROWS:
        cells = []
        for _, _, per_pod in results:
            values = [ph[key] for ph in per_pod.values() if key in ph]
            cells.append(f"{fmt_ms(percentile(values, 50))} / {fmt_ms(percentile(values, 99))}")
        print(f"{title:<{width}}" + "".join(f"{c:>30}" for c in cells))
    print("(*) decision -> patch, + the time the pod's Ready waited for InPlaceUpdateReady=True after its")
    print("    container was ready, + pod Ready -> the decision that reuses its slot (B = %d slots)" % slots)


def rollout_spans(records, image):
    """The instants (s after the start mark) at which each pod was patched and updated."""
    start = next((r["t"] for r in records if r.get("mark") == "start"), None)
    if start is None:
        raise ValueError("no start mark")
    present, patched, updated = {}, {}, {}
    for r in records:
        if "mark" in r:
            continue
        key = r["uid"]
        if r["t"] < start:
            present[key] = not r["deleted"]
            continue
        if key not in present:
            continue  # a pod created during the rollout is no in-place update
        t = (r["t"] - start) / 1000.0
        if r["image"] == image:
            patched.setdefault(key, t)
        if (
            key in patched
            and r["status_image"] == image
            and r["ready"] == "True"
            and r["ipu"] != "False"
            and not r["deleted"]
        ):
            updated.setdefault(key, t)
    pods = [k for k, alive in present.items() if alive]

    def summary(instants):
        values = [instants[k] for k in pods if k in instants]
        return {
            "n": len(values),
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "last": max(values) if values else None,
        }

    return {"pods": len(pods), "patched": summary(patched), "updated": summary(updated)}


def spans(args):
    image = None
    if len(args) == 3 and args[0] == "--image":
        image, path = args[1], args[2]
    else:
        sys.exit(__doc__)
    print(json.dumps(rollout_spans(load(path), image)))


def rollout_churn(records):
    """Pods deleted and created, and the most pod names unavailable at once, after the start mark."""
    start = next((r["t"] for r in records if r.get("mark") == "start"), None)
    if start is None:
        raise ValueError("no start mark")
    done = next((r["t"] for r in records if r.get("mark") == "done"), float("inf"))
    latest = {}  # pod name -> the last record of its newest UID
    for r in records:
        if "mark" not in r and r["t"] < start:
            latest[r["pod"]] = r
    names = {n for n, r in latest.items() if not r["deleted"]}
    at_start = {latest[n]["uid"] for n in names}

    def unavailable():
        return sum(1 for n in names if latest[n]["deleted"] or latest[n]["ready"] != "True")

    deleted, created, worst = set(), set(), unavailable()
    seen = {r["uid"] for r in latest.values()}
    for r in records:
        if "mark" in r or r["t"] < start:
            continue
        if r["uid"] in at_start and r["deleted"]:
            deleted.add(r["uid"])
        if r["uid"] not in at_start:
            created.add(r["uid"])
        current = latest.get(r["pod"])
        # A late event of an older pod of the name (its final DELETED) does not hide the newer one.
        if current is None or current["uid"] == r["uid"] or r["uid"] not in seen:
            latest[r["pod"]] = r
        seen.add(r["uid"])
        if r["t"] <= done:
            worst = max(worst, unavailable())
    return {"pods": len(names), "deleted": len(deleted), "created": len(created), "max_unavailable": worst}


def churn(args):
    if len(args) != 1:
        sys.exit(__doc__)
    print(json.dumps(rollout_churn(load(args[0]))))


def write_csv(path, pods, start):
    cols = ["decision", "patch", "restarted", "cready", "recorded", "ready", "next"]
    with open(path, "w") as f:
        f.write("pod," + ",".join(cols) + "\n")
        for name, p in sorted(pods.items(), key=lambda kv: kv[1]["decision"]):
            cells = [f"{(p[c] - start) / 1000:.3f}" if c in p else "" for c in cols]
            f.write(name + "," + ",".join(cells) + "\n")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "watch" and len(sys.argv) in (4, 6, 8):
        flags = dict(zip(sys.argv[4::2], sys.argv[5::2]))
        if set(flags) - {"--expect", "--selector"}:
            sys.exit(__doc__)
        watch(sys.argv[2], sys.argv[3], int(flags.get("--expect", 0)), flags.get("--selector"))
    elif cmd == "mark" and len(sys.argv) == 4:
        mark(sys.argv[2], sys.argv[3])
    elif cmd == "report":
        report(sys.argv[2:])
    elif cmd == "spans":
        spans(sys.argv[2:])
    elif cmd == "churn":
        churn(sys.argv[2:])
    else:
        sys.exit(__doc__)
