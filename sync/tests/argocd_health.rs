//! graft's health rules against Argo CD's own Lua health checks for the OpenKruise kinds.
//!
//! Argo CD ships `resource_customizations/apps.kruise.io/<Kind>/health.lua`, with fixtures
//! (`testdata/*.yaml`) and the state each should get (`health_test.yaml`).
//! `deploy/argocd/health-scripts` fetches them from a pinned Argo CD release and prints their
//! directory, which `GRAFT_ARGOCD_HEALTH` names (`make test-argocd-health` does both). Each script
//! runs in Lua 5.1 as Argo CD runs it, then:
//! 1. on Argo CD's fixtures, the script must give what `health_test.yaml` says (the harness is
//!    faithful), and graft must give the same state;
//! 2. on graft's CloneSet and Advanced StatefulSet table rows (`src/health/rows.rs`), as the API
//!    server stores them after OpenKruise's defaults, graft and Argo CD must agree.
//!
//! Where graft differs on purpose, [`KNOWN_DIFFERENCES`] says so, with both states and why graft's
//! is the one that follows OpenKruise's status semantics; every other case must agree exactly, and
//! every listed difference must still occur (a fixed one is removed from the list).
#![cfg(feature = "cluster-tests")]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use graft_sync::health::{Health, HealthStatus, health};
use mlua::Lua;
use serde_json::{Value, json};

use HealthStatus::*;

#[path = "../src/health/rows.rs"]
mod rows;

/// The directory `deploy/argocd/health-scripts` prints:
/// `<cache>/argocd-<version>/resource_customizations/apps.kruise.io`.
const ENV: &str = "GRAFT_ARGOCD_HEALTH";

/// Kinds graft has a rule for: every fixture of Argo CD's is compared.
const COMPARED: &[&str] = &[
    "CloneSet",
    "StatefulSet",
    "DaemonSet",
    "BroadcastJob",
    "AdvancedCronJob",
];

/// Kinds Argo CD has a check for and graft has no rule for: only the harness is checked on them.
const NOT_COMPARED: &[(&str, &str)] = &[];

/// A case where graft and Argo CD disagree on purpose.
struct Known {
    /// `argo <Kind>/testdata/<file>` for an Argo CD fixture, `graft <Kind>/<row>` for a graft row.
    case: &'static str,
    argo: HealthStatus,
    graft: HealthStatus,
    why: &'static str,
}

/// Every case where graft's state is not Argo CD's, and why graft's is the right one. The status
/// semantics cited are OpenKruise's: shared/reference/kruise-api.md (§2.1, §2.2, §4) and Kruise
/// 1.9.1's sources (status JSON tags, `cloneset_status.go`, the BroadcastJob controller).
const KNOWN_DIFFERENCES: &[Known] = &[
    // ---- Argo CD's fixtures (hand-written; several could not come from a Kruise controller) ----
    Known {
        case: "argo CloneSet/testdata/healthy.yaml",
        argo: Healthy,
        graft: Degraded,
        why: "the fixture lacks updatedReplicas, readyReplicas and availableReplicas, which Kruise \
              always writes (no omitempty): graft reads 0 of 1 pods at the update revision, and \
              FailedScale=True (a scale step failed, §2.2) during that short roll-out is Degraded. \
              Argo CD compares updatedAvailableReplicas with status.replicas (2, for spec.replicas \
              1) and ignores conditions",
    },
    Known {
        case: "argo CloneSet/testdata/suspended.yaml",
        argo: Suspended,
        graft: Degraded,
        why: "healthy.yaml's status with paused: still no pod at the update revision and \
              FailedScale=True; a pause holds updates, not scaling (§2.1), so the scale failure is \
              what the CloneSet reports",
    },
    Known {
        case: "argo CloneSet/testdata/partition_suspended.yaml",
        argo: Suspended,
        graft: Progressing,
        why: "3 pods updated for expectedUpdatedReplicas 2, but 1 of them ready and available: \
              Kruise calls a partition reached when expectedUpdatedReplicas <= \
              updatedAvailableReplicas (CloneSetPartitionAvailable, reason \
              ProgressPartitionAvailable); Argo CD counts updatedReplicas only",
    },
    Known {
        case: "argo StatefulSet/testdata/healthy.yaml",
        argo: Healthy,
        graft: Progressing,
        why: "the fixture lacks updatedReplicas, readyReplicas and availableReplicas, which the \
              Advanced StatefulSet status always carries (no omitempty): graft reads 0 of 2 pods \
              at the update revision; Argo CD reads updatedAvailableReplicas only",
    },
    Known {
        case: "argo DaemonSet/testdata/degraded.yaml",
        argo: Degraded,
        graft: Progressing,
        why: "the one pod is updated and not available yet, which is also every pod starting \
              after an update: the Advanced DaemonSet status has no failure signal, and Argo CD's \
              own check of apps/v1 DaemonSets calls the same counters Progressing",
    },
    Known {
        case: "argo DaemonSet/testdata/unknown.yaml",
        argo: Progressing,
        graft: Healthy,
        why: "no status and no metadata.generation, which the API server always sets; with it, \
              graft waits for the controller to observe the generation (Progressing). Without, \
              graft sees 0 pods desired: nothing to wait for",
    },
    Known {
        case: "argo DaemonSet/testdata/no-update-strategy-partition.yaml",
        argo: Progressing,
        graft: Healthy,
        why: "desiredNumberScheduled 0 (no node matches): nothing to schedule. Argo CD waits for \
              numberAvailable == 0, which Kruise omits when 0 (omitempty), so it never holds",
    },
    Known {
        case: "argo DaemonSet/testdata/suspended.yaml",
        argo: Suspended,
        graft: Healthy,
        why: "paused, but its one pod is updated and available: the pause holds nothing back. \
              Kruise makes the same call for CloneSets (cloneset_status.go checks \
              CloneSetAvailable before CloneSetBePaused)",
    },
    Known {
        case: "argo BroadcastJob/testdata/suspended.yaml",
        argo: Suspended,
        graft: Healthy,
        why: "the fixture is paused and carries Complete=True ('Job completed, 1 pods \
              succeeded'); the controller sets phase completed with that condition and leaves a \
              finished job alone, so a real job is never both. graft trusts Complete",
    },
    Known {
        case: "argo AdvancedCronJob/testdata/notScheduled.yaml",
        argo: Degraded,
        graft: Healthy,
        why: "no lastScheduleTime yet: a cron job applied before its first scheduled time has not \
              failed anything (Kruise writes lastScheduleTime only when a run is created); the \
              health of each run is its Job's",
    },
    // ---- graft's CloneSet rows, after Kruise's defaults -----------------------------------------
    Known {
        case: "graft CloneSet/mid-rollout",
        argo: Degraded,
        graft: Progressing,
        why: "a roll-out in progress: Kruise reports Progressing=True (reason CloneSetUpdated) and \
              fails it only past progressDeadlineSeconds (ProgressDeadlineExceeded, §2.2); Argo \
              CD calls any updatedAvailableReplicas != replicas Degraded",
    },
    Known {
        case: "graft CloneSet/updated not ready",
        argo: Degraded,
        graft: Progressing,
        why: "updated pods becoming ready: a roll-out in progress, as mid-rollout",
    },
    Known {
        case: "graft CloneSet/ready not available",
        argo: Degraded,
        graft: Progressing,
        why: "updated pods ready, waiting out minReadySeconds: a roll-out in progress",
    },
    Known {
        case: "graft CloneSet/updatedAvailable omitted at 0",
        argo: Suspended,
        graft: Progressing,
        why: "updatedAvailableReplicas is omitempty: absent means 0 updated pods available, not \
              a pause; Argo CD reads an absent field as paused",
    },
    Known {
        case: "graft CloneSet/old Kruise without updatedAvailable",
        argo: Suspended,
        graft: Healthy,
        why: "a status from a Kruise without updatedAvailableReplicas: graft falls back to \
              updatedReadyReplicas, all 5; Argo CD reads the missing field as paused",
    },
    Known {
        case: "graft CloneSet/scaled to zero",
        argo: Suspended,
        graft: Healthy,
        why: "0 replicas: every counter is 0, so the omitempty updatedAvailableReplicas is absent; \
              there is nothing to roll out",
    },
    Known {
        case: "graft CloneSet/paused but complete",
        argo: Suspended,
        graft: Healthy,
        why: "all 5 pods updated and available: Kruise itself reports Progressing=True reason \
              CloneSetAvailable, checked before paused (cloneset_status.go); Argo CD reports \
              any paused CloneSet as Suspended",
    },
    Known {
        case: "graft CloneSet/v1beta1 paused",
        argo: Progressing,
        graft: Suspended,
        why: "v1beta1 keeps paused and partition under updateStrategy.rollingUpdate (§2.1); Argo \
              CD's script reads the v1alpha1 paths only and misses the pause",
    },
    Known {
        case: "graft CloneSet/percent partition without expectedUpdatedReplicas",
        argo: Unknown,
        graft: Suspended,
        why: "without expectedUpdatedReplicas (an older Kruise) Argo CD's script compares nil and \
              fails; graft resolves partition 50% of 5 to 3 (rounded up, §1.5), expects 2 \
              updated and finds them available: the partition is reached",
    },
    Known {
        case: "graft CloneSet/deadline exceeded",
        argo: Suspended,
        graft: Degraded,
        why: "Progressing=False reason ProgressDeadlineExceeded is Kruise's own 'stuck' verdict \
              (§2.2); Argo CD ignores conditions and reads the absent updatedAvailableReplicas as \
              paused",
    },
    Known {
        case: "graft CloneSet/failed update",
        argo: Suspended,
        graft: Degraded,
        why: "FailedUpdate=True with no pod updated: the update step fails (§2.2); Argo CD \
              ignores conditions and reads the absent updatedAvailableReplicas as paused",
    },
    Known {
        case: "graft CloneSet/scale-down in progress",
        argo: Healthy,
        graft: Progressing,
        why: "spec.replicas 3 while 5 pods still exist: Argo CD compares with status.replicas \
              (the pods that exist), graft with spec.replicas, as Kruise's CloneSetAvailable \
              does (status.replicas == spec.replicas)",
    },
    Known {
        case: "graft CloneSet/old pods unavailable",
        argo: Healthy,
        graft: Progressing,
        why: "availableReplicas 4 of 5: graft waits until every pod is available; Argo CD reads \
              updatedAvailableReplicas only",
    },
    // ---- graft's Advanced StatefulSet rows, after Kruise's defaults ---------------------------
    Known {
        case: "graft StatefulSet/rolling",
        argo: Degraded,
        graft: Progressing,
        why: "a roll-out in progress (1 of 3 updated), as CloneSet mid-rollout",
    },
    Known {
        case: "graft StatefulSet/partition",
        argo: Progressing,
        graft: Suspended,
        why: "partition 1 of 3 reached (2 updated and available): since Kruise 1.8 the partition \
              is the number of pods kept at the old revision (§4), so reached means updated == \
              replicas - partition. Argo CD wants updatedReplicas > replicas - partition, more \
              than the partition lets update",
    },
    Known {
        case: "graft StatefulSet/on delete",
        argo: Unknown,
        graft: Healthy,
        why: "an OnDelete set has no rollingUpdate (Kruise defaults it for RollingUpdate only); \
              Argo CD's script indexes updateStrategy.rollingUpdate and fails",
    },
    Known {
        case: "graft StatefulSet/v1alpha1 without updatedReady fields",
        argo: Suspended,
        graft: Healthy,
        why: "the v1alpha1 StatefulSet status has no updatedReadyReplicas or \
              updatedAvailableReplicas (§4): graft falls back to ready and updated (3 of 3); \
              Argo CD reads the missing field as paused",
    },
    Known {
        case: "graft StatefulSet/failed pod creation",
        argo: Suspended,
        graft: Degraded,
        why: "FailedCreatePod=True: the last reconcile could not create a pod (the status and its \
              conditions are rebuilt every reconcile, so this one is current); Argo CD ignores \
              conditions and reads the absent updatedAvailableReplicas as paused",
    },
];

/// Argo CD's state names, as graft's states; a name Argo CD does not know reads as Unknown there.
fn argo_status(name: &str) -> HealthStatus {
    match name {
        "Healthy" => Healthy,
        "Progressing" => Progressing,
        "Degraded" => Degraded,
        "Suspended" => Suspended,
        "Missing" => Missing,
        _ => Unknown,
    }
}

/// What Argo CD shows for an object: `None` when the script returns nil (no health at all).
#[derive(Clone, Debug, PartialEq)]
struct ArgoHealth {
    status: Option<HealthStatus>,
    message: String,
}

/// One health script, named for error messages.
struct Script {
    name: String,
    source: String,
}

/// Argo CD's verdict on `obj`, as its controller reaches it: gitops-engine answers "Pending
/// deletion" before any script; a script error is Unknown with the error as the message.
fn argo_health(script: &Script, obj: &Value) -> ArgoHealth {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return ArgoHealth {
            status: Some(Progressing),
            message: "Pending deletion".into(),
        };
    }
    // Built-in scripts run with the standard libraries open (UseOpenLibs).
    let lua = Lua::new();
    run_script(&lua, script, obj).unwrap_or_else(|e| ArgoHealth {
        status: Some(Unknown),
        message: e.to_string(),
    })
}

fn run_script(lua: &Lua, script: &Script, obj: &Value) -> mlua::Result<ArgoHealth> {
    lua.globals().set("obj", to_lua(lua, obj)?)?;
    let returned: mlua::Value = lua
        .load(script.source.as_str())
        .set_name(script.name.as_str())
        .call(())?;
    match returned {
        mlua::Value::Nil => Ok(ArgoHealth {
            status: None,
            message: String::new(),
        }),
        mlua::Value::Table(hs) => {
            let status: Option<String> = hs.get("status")?;
            let message: Option<String> = hs.get("message")?;
            Ok(ArgoHealth {
                status: Some(argo_status(status.as_deref().unwrap_or_default())),
                message: message.unwrap_or_default(),
            })
        }
        other => Err(mlua::Error::runtime(format!(
            "the script returned a {}, not a table",
            other.type_name()
        ))),
    }
}

/// The object as Argo CD hands it to a script (util/lua `decodeValue`): numbers are Lua numbers,
/// arrays are tables indexed from 1, maps are tables, null is nil.
fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Object(fields) => {
            let t = lua.create_table()?;
            for (k, item) in fields {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

/// A row as the API server stores it once OpenKruise's mutating webhook has defaulted it (Kruise
/// 1.9.1 `SetDefaultsCloneSet`, `SetDefaultsStatefulSet`): replicas and the update strategy, which
/// Argo CD's scripts index without a nil check. graft's rows leave them out, as manifests do;
/// graft's own admission webhook writes the same defaults (`StatefulSetSpec::defaulted`). Kruise
/// 1.9.1 has no v1beta1 CloneSet: that row stays as written.
fn kruise_defaults(obj: &Value) -> Value {
    let mut obj = obj.clone();
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return obj;
    };
    spec.entry("replicas").or_insert(json!(1));
    let strategy = spec.entry("updateStrategy").or_insert(json!({}));
    let Some(strategy) = strategy.as_object_mut() else {
        return obj;
    };
    match (api_version.as_str(), kind.as_str()) {
        ("apps.kruise.io/v1alpha1", "CloneSet") => {
            strategy.entry("type").or_insert(json!("ReCreate"));
            strategy.entry("partition").or_insert(json!(0));
            strategy.entry("maxUnavailable").or_insert(json!("20%"));
            strategy.entry("maxSurge").or_insert(json!(0));
        }
        (_, "StatefulSet") => {
            let ty = strategy.entry("type").or_insert(json!("RollingUpdate"));
            if ty == "RollingUpdate" {
                let rolling = strategy.entry("rollingUpdate").or_insert(json!({}));
                if let Some(rolling) = rolling.as_object_mut() {
                    rolling.entry("partition").or_insert(json!(0));
                    rolling.entry("maxUnavailable").or_insert(json!(1));
                    rolling
                        .entry("podUpdatePolicy")
                        .or_insert(json!("ReCreate"));
                    rolling.entry("minReadySeconds").or_insert(json!(0));
                }
            }
        }
        _ => {}
    }
    obj
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path))
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A field of a map by name, ignoring case (Argo CD's test reads `health_test.yaml` through
/// encoding/json, which does; one of its files says `inputpath`).
fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    map.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// One compared object: Argo CD's verdict and graft's.
struct Case {
    id: String,
    argo: ArgoHealth,
    graft: Health,
}

#[test]
fn graft_agrees_with_argocd_health_scripts_on_kruise_kinds() {
    let dir = match std::env::var_os(ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!(
            "{ENV} is not set: it names the Argo CD health scripts that deploy/argocd/health-scripts \
             fetches and prints; run `make test-argocd-health`"
        ),
    };
    let mut failures = Vec::new();
    let mut cases = Vec::new();
    let mut fixtures = 0;

    let mut kinds: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{ENV}={}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("health.lua").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kinds.sort();
    for want in COMPARED {
        if !kinds.iter().any(|k| k == want) {
            failures.push(format!(
                "{}: no {want}/health.lua (is {ENV} the apps.kruise.io directory?)",
                dir.display()
            ));
        }
    }

    for kind in &kinds {
        let compared = COMPARED.contains(&kind.as_str());
        if !compared && !NOT_COMPARED.iter().any(|(k, _)| k == kind) {
            failures.push(format!(
                "Argo CD has a health check for apps.kruise.io/{kind} that this test does not know: \
                 compare it (COMPARED) or say why not (NOT_COMPARED)"
            ));
            continue;
        }
        let script = Script {
            name: format!("{kind}/health.lua"),
            source: read(&dir.join(kind).join("health.lua")),
        };
        let tests = yaml(&dir.join(kind).join("health_test.yaml"));
        let tests = field(&tests, "tests")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{kind}/health_test.yaml has no tests"));
        assert!(!tests.is_empty(), "{kind}/health_test.yaml lists no tests");
        for t in tests {
            let input = field(t, "inputPath")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{kind}/health_test.yaml: a test without inputPath"));
            let want = field(t, "healthStatus");
            let text = |f| {
                want.and_then(|w| field(w, f))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let want = ArgoHealth {
                status: Some(argo_status(&text("status"))),
                message: text("message"),
            };
            let obj = yaml(&dir.join(kind).join(input));
            let argo = argo_health(&script, &obj);
            fixtures += 1;
            // The harness runs the script as Argo CD's own test does, or nothing below means anything.
            if argo != want {
                failures.push(format!(
                    "harness: {kind}/{input}: Argo CD's test expects {want:?}, the script gave {argo:?}"
                ));
            }
            if compared {
                cases.push(Case {
                    id: format!("argo {kind}/{input}"),
                    argo,
                    graft: health(&obj),
                });
            }
        }

        let rows = match kind.as_str() {
            "CloneSet" => rows::cloneset_rows(),
            "StatefulSet" => rows::statefulset_rows(),
            _ => Vec::new(),
        };
        for (name, row, _, _) in rows {
            let id = format!("graft {kind}/{name}");
            let obj = kruise_defaults(&row);
            let graft = health(&obj);
            // graft reads an absent field as Kruise's default: defaulting changes nothing.
            if graft != health(&row) {
                failures.push(format!(
                    "{id}: graft gives {graft:?} after Kruise's defaults, {:?} before",
                    health(&row)
                ));
            }
            cases.push(Case {
                id,
                argo: argo_health(&script, &obj),
                graft,
            });
        }
    }

    let mut report = String::new();
    for c in &cases {
        let known = KNOWN_DIFFERENCES.iter().find(|k| k.case == c.id);
        let verdict = match known {
            Some(k) if c.argo.status == Some(k.argo) && c.graft.status == k.graft => "known",
            Some(k) => {
                failures.push(format!(
                    "{}: listed as Argo CD {} / graft {} ({}), now Argo CD {:?} / graft {} ({:?}): \
                     update KNOWN_DIFFERENCES",
                    c.id, k.argo, k.graft, k.why, c.argo.status, c.graft.status, c.graft.message
                ));
                "CHANGED"
            }
            None if c.argo.status == Some(c.graft.status) => "agree",
            None => {
                failures.push(format!(
                    "{}: Argo CD {:?} ({:?}), graft {} ({:?}): fix graft's rule, or list the case \
                     in KNOWN_DIFFERENCES with the reason graft's state is right",
                    c.id, c.argo.status, c.argo.message, c.graft.status, c.graft.message
                ));
                "DIFFER"
            }
        };
        let argo = c.argo.status.map_or("none".into(), |s| s.to_string());
        let _ = writeln!(
            report,
            "{verdict:7} {:66} argo {argo:11} graft {:11} {}",
            c.id, c.graft.status, c.graft.message
        );
        if let Some(k) = known {
            let _ = writeln!(report, "{:8}why: {}", "", k.why);
        }
    }
    for k in KNOWN_DIFFERENCES {
        if !cases.iter().any(|c| c.id == k.case) {
            failures.push(format!(
                "KNOWN_DIFFERENCES lists {:?}, which is no longer a case: remove it",
                k.case
            ));
        }
    }
    for (kind, why) in NOT_COMPARED {
        let _ = writeln!(report, "not compared: {kind}: {why}");
    }
    eprintln!(
        "{fixtures} Argo CD fixtures run; {} cases compared, {} known differences:\n{report}",
        cases.len(),
        KNOWN_DIFFERENCES.len()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
