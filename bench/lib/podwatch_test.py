#!/usr/bin/env python3
"""Tests of podwatch.py's timeline rules: python3 -m unittest bench/lib/podwatch_test.py"""
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ next to the bench scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import podwatch  # noqa: E402

OLD, NEW = "reg/app:v1", "reg/app:v2"


def rec(pod, t, **kw):
    state = {
        "pod": pod, "uid": pod, "deleted": False, "rev": "r1", "image": OLD, "ipu": "True",
        "ipu_ltt": None, "ready": "True", "ready_ltt": None, "restarts": 0,
        "started": "2026-01-01T00:00:00Z", "cready": True, "status_image": OLD, "update_ts": None,
    }
    state.update(kw, t=t)
    return state


def in_place(pod, t0, recorded_after_ready=False):
    """One pod's in-place update starting at t0 (ms): the records a watch would see."""
    marked = rec(pod, t0, ipu="False", ready="False")
    patched = dict(marked, t=t0 + 20, image=NEW, rev="r2")
    restarted = dict(patched, t=t0 + 1000, restarts=1, started="2026-01-01T00:01:00Z", cready=False)
    cready = dict(restarted, t=t0 + 2000, cready=True)
    if recorded_after_ready:
        recorded = dict(cready, t=t0 + 2300, ipu="True")
    else:
        recorded = dict(restarted, t=t0 + 1100, ipu="True")
        cready = dict(recorded, t=t0 + 2000, cready=True)
    ready = dict(recorded if recorded["t"] > cready["t"] else cready, t=t0 + 2400, ready="True")
    return sorted([marked, patched, restarted, cready, recorded, ready], key=lambda r: r["t"])


class Timeline(unittest.TestCase):
    def test_instants_of_one_pod(self):
        records = [rec("a", 0), {"mark": "start", "t": 50}] + in_place("a", 100)
        p = podwatch.pod_times(records, NEW, 50)["a"]
        self.assertEqual(
            {k: p[k] for k in ("decision", "patch", "restarted", "cready", "recorded", "ready")},
            {"decision": 100, "patch": 120, "restarted": 1100, "cready": 2100, "recorded": 1200, "ready": 2500},
        )

    def test_records_before_the_start_mark_are_the_baseline(self):
        # The pod was restarted once before the rollout: only a newer container counts.
        before = rec("a", 0, restarts=3, started="2026-01-01T00:00:30Z")
        patched = dict(before, t=200, image=NEW, ipu="False")
        same_container = dict(patched, t=300, ready="False")
        new_container = dict(patched, t=900, restarts=4, started="2026-01-01T00:02:00Z")
        p = podwatch.pod_times([before, patched, same_container, new_container], NEW, 100)["a"]
        self.assertEqual(p["restarted"], 900)

    def test_a_patch_without_the_condition_first_is_its_own_decision(self):
        records = [rec("a", 0), dict(rec("a", 500), image=NEW)]
        p = podwatch.pod_times(records, NEW, 100)["a"]
        self.assertEqual((p["decision"], p["patch"]), (500, 500))

    def test_pods_never_patched_are_left_out(self):
        self.assertEqual(podwatch.pod_times([rec("a", 0), rec("a", 200, ready="False")], NEW, 100), {})

    def test_the_slot_a_pod_frees_goes_to_the_decision_b_places_later(self):
        # Two slots: a and b start at once; c takes the slot of the first pod to become ready (b).
        pods = {
            "a": {"decision": 0, "ready": 3000},
            "b": {"decision": 10, "ready": 2000},
            "c": {"decision": 2250},
        }
        podwatch.with_next_decisions(pods, 2)
        self.assertEqual(pods["b"]["next"], 2250)
        self.assertNotIn("next", pods["a"])

    def test_own_time_counts_the_wait_for_the_readiness_gate_only_when_it_held_ready(self):
        early = podwatch.phases(podwatch.pod_times(in_place("a", 0), NEW, -1)["a"])
        late = podwatch.phases(podwatch.pod_times(in_place("a", 0, recorded_after_ready=True), NEW, -1)["a"])
        self.assertEqual((early["decide_patch"], early["waited_recorded"], early["own"]), (20, 0.0, 20))
        self.assertEqual((late["waited_recorded"], late["own"]), (300, 320))
        self.assertEqual(late["both_ready"], 100)

    def test_percentiles_are_nearest_rank(self):
        values = list(range(1, 31))
        self.assertEqual((podwatch.percentile(values, 50), podwatch.percentile(values, 99)), (15, 30))
        self.assertIsNone(podwatch.percentile([], 50))

    def test_state_of_reads_the_app_container_and_the_conditions(self):
        pod = {
            "metadata": {"name": "a", "uid": "u", "labels": {"controller-revision-hash": "r2"},
                         "annotations": {"apps.kruise.io/inplace-update-state": '{"updateTimestamp": "T"}'}},
            "spec": {"containers": [{"name": "side", "image": "x"}, {"name": "app", "image": NEW}]},
            "status": {
                "conditions": [{"type": "InPlaceUpdateReady", "status": "False", "lastTransitionTime": "L"},
                               {"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "restartCount": 2, "ready": True, "image": NEW,
                                       "state": {"running": {"startedAt": "S"}}}],
            },
        }
        s = podwatch.state_of(pod)
        self.assertEqual(
            (s["image"], s["rev"], s["ipu"], s["ipu_ltt"], s["ready"], s["restarts"], s["started"], s["update_ts"]),
            (NEW, "r2", "False", "L", "True", 2, "S", "T"),
        )


if __name__ == "__main__":
    unittest.main()


class Spans(unittest.TestCase):
    def test_patched_and_updated_instants_of_the_pods_present_at_the_start(self):
        records = [rec("a", 0), rec("b", 0), {"mark": "start", "t": 1000}]
        records += [dict(rec("a", 1500), ipu="False"), dict(rec("a", 2000), image=NEW, ipu="False")]
        records += [dict(rec("a", 2500), image=NEW, ipu="False", ready="False", status_image=NEW)]
        records += [dict(rec("a", 3000), image=NEW, status_image=NEW)]  # ready, gate True: updated
        records += [dict(rec("b", 4000), image=NEW)]  # patched, never updated
        records += [dict(rec("c", 4500), image=NEW, status_image=NEW)]  # created during the rollout
        got = podwatch.rollout_spans(records, NEW)
        self.assertEqual(got["pods"], 2)
        self.assertEqual(got["patched"], {"n": 2, "p50": 1.0, "p99": 3.0, "last": 3.0})
        self.assertEqual(got["updated"], {"n": 1, "p50": 2.0, "p99": 2.0, "last": 2.0})

    def test_a_status_image_before_the_spec_patch_is_no_update(self):
        records = [rec("a", 0), {"mark": "start", "t": 1000}, dict(rec("a", 1200), status_image=NEW)]
        records += [dict(rec("a", 1400), image=NEW, status_image=NEW)]
        got = podwatch.rollout_spans(records, NEW)
        self.assertEqual((got["patched"]["last"], got["updated"]["last"]), (0.4, 0.4))

    def test_no_start_mark_is_an_error(self):
        with self.assertRaises(ValueError):
            podwatch.rollout_spans([rec("a", 0)], NEW)


class Churn(unittest.TestCase):
    def test_recreated_pods_and_the_most_names_unavailable_at_once(self):
        # a is deleted and recreated under its name, b is updated in place; the old a's final
        # DELETED event arrives after the new a is listed.
        records = [rec("a", 0, uid="a1"), rec("b", 0, uid="b1"), {"mark": "start", "t": 1000}]
        records += [rec("a", 1100, uid="a1", deleted=True, ready="False")]
        records += [rec("a", 1300, uid="a2", ready="False"), rec("a", 1350, uid="a1", deleted=True)]
        records += [rec("b", 1400, uid="b1", ready="False"), rec("a", 1500, uid="a2")]
        records += [rec("b", 1600, uid="b1"), {"mark": "done", "t": 1700}]
        records += [rec("b", 1800, uid="b1", ready="False")]  # after the rollout: not counted
        got = podwatch.rollout_churn(records)
        self.assertEqual(got, {"pods": 2, "deleted": 1, "created": 1, "max_unavailable": 2})

    def test_an_in_place_rollout_recreates_nothing(self):
        records = [rec("a", 0), rec("b", 0), {"mark": "start", "t": 100}]
        records += [rec("a", 200, ready="False", image=NEW), rec("a", 900, image=NEW)]
        records += [rec("b", 1000, ready="False", image=NEW), rec("b", 1900, image=NEW)]
        got = podwatch.rollout_churn(records)
        self.assertEqual(got, {"pods": 2, "deleted": 0, "created": 0, "max_unavailable": 1})

    def test_no_start_mark_is_an_error(self):
        with self.assertRaises(ValueError):
            podwatch.rollout_churn([rec("a", 0)])
