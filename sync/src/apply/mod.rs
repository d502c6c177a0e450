//! The apply engine: the part of the sync that talks to the API server. It turns an
//! [`ApplyPlan`] into server-side applies and a [`PrunePlan`] into deletes, and decides
//! nothing the plan did not (DESIGN.md, "decide purely, act separately").
//!
//! - [`Applier::discover`]: which kinds the cluster serves, for [`crate::plan::plan`].
//! - [`Applier::validate`]: a server-side dry-run of every object of a commit, all errors at
//!   once, each naming its file.
//! - [`Applier::apply`]: the waves in order, server-side apply with field manager `graft`,
//!   writing only the objects whose dry-run result differs from the live object (drift check
//!   as Flux's `ssa.Apply` does).
//! - [`Applier::prune`] and [`Applier::live_meta`]: delete what left the repository, reading
//!   the owner labels [`crate::plan::prune_set`] needs first.

mod drift;
mod error;
mod report;
mod resources;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use graft_api::graft::gitsync::InventoryEntry;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

pub use drift::{
    applied_by, comparable, established, foreign_editors, is_override_manager, needs_apply,
    take_over,
};
pub use error::Error;
pub use report::{Action, ApplyReport, ObjectError, ObjectOutcome, PruneReport};

use crate::object::{ObjectId, ObjectRef};
use crate::plan::{ApplyPlan, KindScopes, LiveMeta, PlannedObject, PrunePlan};
use resources::{Resource, Resources, crd_resource, namespace_resource, plan_crd_kinds, plan_crds};

/// The field manager of everything graft applies from Git.
pub const FIELD_MANAGER: &str = "graft";

/// How many objects of a wave are sent at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long to wait for a CustomResourceDefinition to be `Established` unless told otherwise.
pub const DEFAULT_CRD_TIMEOUT: Duration = Duration::from_secs(60);

/// Applies plans and prunes with one client; cheap to clone (clones share the discovery cache).
#[derive(Clone)]
pub struct Applier {
    client: Client,
    field_manager: String,
    concurrency: usize,
    crd_timeout: Duration,
    override_managers: Arc<Vec<String>>,
    resources: Arc<Resources>,
}

/// The result of the read and dry-run of one object, before any write.
struct Checked<'a> {
    object: &'a PlannedObject,
    resource: Resource,
    action: Action,
    /// Foreign editors to revert, and the managed fields that make graft own their changes.
    take_over: Option<(Vec<String>, TakeOver)>,
    /// Delete the live object and create it again (a job whose definition changed).
    replace: bool,
}

/// What is written to the live object's `metadata.managedFields` before the apply.
struct TakeOver {
    resource_version: String,
    managed_fields: Value,
}

impl Applier {
    /// An applier with field manager [`FIELD_MANAGER`], [`DEFAULT_CONCURRENCY`] and
    /// [`DEFAULT_CRD_TIMEOUT`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            field_manager: FIELD_MANAGER.to_string(),
            concurrency: DEFAULT_CONCURRENCY,
            crd_timeout: DEFAULT_CRD_TIMEOUT,
            override_managers: Arc::default(),
            resources: Arc::default(),
        }
    }

    /// Sends at most `n` requests of a wave at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Waits at most `timeout` for each CustomResourceDefinition to be `Established`.
    pub fn with_crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }

    /// Also reverts the changes of these field managers (besides `kubectl*` and
    /// `before-first-apply`, see [`is_override_manager`]).
    pub fn with_override_managers(mut self, managers: Vec<String>) -> Self {
        self.override_managers = Arc::new(managers);
        self
    }

    /// The field manager the applies use.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// The scope of every kind the API server serves (aggregated discovery, one or two
    /// requests), for [`crate::plan::plan`]; also primes the applier's cache of REST resources.
    pub async fn discover(&self) -> Result<KindScopes, Error> {
        let discovery = Discovery::new(self.client.clone())
            .run_aggregated()
            .await
            .map_err(Error::Discovery)?;
        let mut scopes = KindScopes::new();
        for group in discovery.groups() {
            // Insert the preferred version last so that its scope wins (scopes agree anyway).
            let preferred = group.preferred_version_or_latest().to_string();
            let mut versions: Vec<&str> = group.versions().filter(|v| *v != preferred).collect();
            versions.push(&preferred);
            for version in versions {
                for (ar, caps) in group.versioned_resources(version) {
                    let namespaced = caps.scope == Scope::Namespaced;
                    scopes.insert(&ar.group, &ar.kind, namespaced);
                    self.resources.insert(ar, namespaced);
                }
            }
        }
        Ok(scopes)
    }

    /// Server-side apply with `dryRun=All` (field manager `graft`, conflicts forced, strict
    /// field validation) of every object of the plan, concurrently. Returns every error, each
    /// naming the object's file and document and the API server's reason: unknown kind,
    /// schema error, unknown field, admission denial.
    ///
    /// Objects that cannot be checked before the plan is applied are skipped here and checked
    /// by [`Applier::apply`], which dry-runs every object of a wave before writing any of it:
    /// objects of a kind that a CustomResourceDefinition of the same plan defines but the
    /// cluster does not serve yet (the CRD itself is validated), and objects in a Namespace
    /// that the plan creates.
    pub async fn validate(&self, plan: &ApplyPlan) -> Result<(), Vec<ObjectError>> {
        let requests = AtomicUsize::new(0);
        let crd_kinds = plan_crd_kinds(plan);
        let missing_namespaces = self.missing_namespaces(plan, &requests).await;
        let checks: Vec<_> = plan
            .objects()
            .map(|o| {
                let (crd_kinds, missing_namespaces, requests) =
                    (&crd_kinds, &missing_namespaces, &requests);
                async move {
                    let r = &o.reference;
                    let resource = match self.resolve(r, requests).await {
                        Ok(Some(res)) => res,
                        Ok(None) if crd_kinds.contains(&(r.group.clone(), r.kind.clone())) => {
                            return None;
                        }
                        Ok(None) => return Some(object_error(o, unknown_kind(r))),
                        Err(e) => return Some(object_error(o, format!("discovery: {e}"))),
                    };
                    if r.namespace
                        .as_ref()
                        .is_some_and(|ns| missing_namespaces.contains(ns))
                    {
                        return None;
                    }
                    // A job replaced on change is checked when it is created again: a dry-run
                    // patch of the live one would hit its immutable fields.
                    if o.spec_hash().is_some() {
                        match self.api(r, &resource).get_opt(&r.name).await {
                            Ok(live) if replaces(o, live.as_ref()) => return None,
                            Ok(_) => {}
                            Err(e) => {
                                return Some(object_error(
                                    o,
                                    format!("read the live object: {}", reason(&e)),
                                ));
                            }
                        }
                    }
                    self.server_side_apply(o, &resource, true, requests)
                        .await
                        .err()
                        .map(|e| object_error(o, reason(&e)))
                }
            })
            .collect();
        let results: Vec<Option<ObjectError>> = buffered(checks, self.concurrency).await;
        let mut errors: Vec<ObjectError> = results.into_iter().flatten().collect();
        if errors.is_empty() {
            return Ok(());
        }
        errors.sort();
        Err(errors)
    }

    /// Applies the waves of the plan in order with server-side apply (field manager `graft`,
    /// conflicts forced), the objects of a wave concurrently.
    ///
    /// For each wave: read every object and dry-run its apply; if the API server refuses any,
    /// stop with [`Error::Rejected`] before writing anything of the wave. Then write only the
    /// objects that are missing ([`Action::Created`]) or whose dry-run result differs from the
    /// live object, ignoring `status`, `managedFields`, `resourceVersion` and `generation`
    /// ([`Action::Configured`], which also reverts edits by other managers); the others are
    /// [`Action::Unchanged`] and no write is sent for them. After a wave with
    /// CustomResourceDefinitions, wait until they are `Established`.
    pub async fn apply(&self, plan: &ApplyPlan) -> Result<ApplyReport, Error> {
        let requests = AtomicUsize::new(0);
        let writes = AtomicUsize::new(0);
        let crds = plan_crds(plan);
        let mut report = ApplyReport::default();
        let snapshot = |report: &ApplyReport| ApplyReport {
            objects: report.objects.clone(),
            requests: requests.load(Ordering::Relaxed),
            writes: writes.load(Ordering::Relaxed),
        };
        for wave in &plan.waves {
            let checks: Vec<_> = wave
                .objects
                .iter()
                .map(|o| self.check(o, &crds, &requests))
                .collect();
            let checked: Vec<Result<Checked<'_>, ObjectError>> =
                buffered(checks, self.concurrency).await;
            let (checked, mut rejected) = split(checked);
            if !rejected.is_empty() {
                rejected.sort();
                return Err(Error::Rejected {
                    stage: wave.stage,
                    errors: rejected,
                    applied: snapshot(&report),
                });
            }
            let writes_of_wave: Vec<_> = checked
                .into_iter()
                .map(|c| {
                    let (requests, writes) = (&requests, &writes);
                    async move {
                        let mut outcome = ObjectOutcome {
                            reference: c.object.reference.clone(),
                            location: c.object.location.clone(),
                            action: c.action,
                            reverted: Vec::new(),
                            replaced: c.replace,
                        };
                        if c.action == Action::Unchanged {
                            return Ok(outcome);
                        }
                        if c.replace {
                            writes.fetch_add(2, Ordering::Relaxed);
                            return self
                                .replace(c.object, &c.resource, requests)
                                .await
                                .map(|()| outcome)
                                .map_err(|e| object_error(c.object, e));
                        }
                        if let Some((editors, take)) = &c.take_over {
                            writes.fetch_add(1, Ordering::Relaxed);
                            self.take_over_fields(c.object, &c.resource, take, requests)
                                .await
                                .map_err(|e| {
                                    object_error(
                                        c.object,
                                        format!(
                                            "take over the fields of {}: {}",
                                            editors.join(", "),
                                            reason(&e)
                                        ),
                                    )
                                })?;
                            outcome.reverted = editors.clone();
                        }
                        writes.fetch_add(1, Ordering::Relaxed);
                        self.server_side_apply(c.object, &c.resource, false, requests)
                            .await
                            .map(|_| outcome)
                            .map_err(|e| object_error(c.object, reason(&e)))
                    }
                })
                .collect();
            let written: Vec<Result<ObjectOutcome, ObjectError>> =
                buffered(writes_of_wave, self.concurrency).await;
            let (outcomes, mut failed) = split(written);
            report.objects.extend(outcomes);
            if !failed.is_empty() {
                failed.sort();
                return Err(Error::Apply {
                    stage: wave.stage,
                    errors: failed,
                    applied: snapshot(&report),
                });
            }
            let wave_crds = wave.objects.iter().map(|o| &o.reference).filter(|r| {
                r.group == "apiextensions.k8s.io" && r.kind == "CustomResourceDefinition"
            });
            for r in wave_crds {
                if let Err((after, last)) = self.wait_established(&r.name, &requests).await {
                    return Err(Error::NotEstablished {
                        name: r.name.clone(),
                        after,
                        last,
                        applied: snapshot(&report),
                    });
                }
            }
        }
        Ok(snapshot(&report))
    }

    /// Deletes the waves of the prune plan in order (background propagation: the API server
    /// removes dependents, as `kubectl delete` does), the objects of a wave concurrently.
    /// Objects already gone, or whose kind is no longer served, are reported as gone; other
    /// failures are reported and do not stop the prune.
    pub async fn prune(&self, prune: &PrunePlan) -> PruneReport {
        let requests = AtomicUsize::new(0);
        let mut report = PruneReport::default();
        for wave in &prune.delete {
            let deletes: Vec<_> = wave
                .iter()
                .map(|r| {
                    let requests = &requests;
                    async move { (r.clone(), self.delete(r, requests).await) }
                })
                .collect();
            let results: Vec<(ObjectRef, Result<bool, String>)> =
                buffered(deletes, self.concurrency).await;
            for (r, result) in results {
                match result {
                    Ok(true) => report.deleted.push(r),
                    Ok(false) => report.gone.push(r),
                    Err(reason) => report.failed.push((r, reason)),
                }
            }
        }
        report
    }

    /// The labels and annotations of the live objects of an inventory, keyed by identity, in
    /// the shape [`crate::plan::prune_set`] needs. Objects that do not exist (or whose kind is
    /// no longer served) are absent from the map; any other read error is returned, so that
    /// nothing is pruned on partial knowledge.
    pub async fn live_meta(
        &self,
        inventory: &[InventoryEntry],
    ) -> Result<BTreeMap<ObjectId, LiveMeta>, Error> {
        let requests = AtomicUsize::new(0);
        let reads: Vec<_> = inventory
            .iter()
            .map(|entry| {
                let requests = &requests;
                async move {
                    let r = ObjectRef::from(entry);
                    let resource = match self.resolve_any_version(&r, requests).await {
                        Ok(Some(res)) => res,
                        Ok(None) => return Ok(None),
                        Err(source) => return Err(Error::ReadLive { object: r, source }),
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    match self.api(&r, &resource).get_metadata_opt(&r.name).await {
                        Ok(Some(m)) => Ok(Some((
                            r.id(),
                            LiveMeta {
                                labels: m.metadata.labels.unwrap_or_default(),
                                annotations: m.metadata.annotations.unwrap_or_default(),
                            },
                        ))),
                        Ok(None) => Ok(None),
                        Err(source) => Err(Error::ReadLive { object: r, source }),
                    }
                }
            })
            .collect();
        let results: Vec<Result<Option<(ObjectId, LiveMeta)>, Error>> =
            buffered(reads, self.concurrency).await;
        let mut out = BTreeMap::new();
        for result in results {
            if let Some((id, meta)) = result? {
                out.insert(id, meta);
            }
        }
        Ok(out)
    }

    /// The live object (any served version of its kind), or `None` when it does not exist; for
    /// health and rollout progress.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, Error> {
        let requests = AtomicUsize::new(0);
        let resource = match self.resolve_any_version(r, &requests).await {
            Ok(Some(res)) => res,
            Ok(None) => return Ok(None),
            Err(source) => {
                return Err(Error::ReadLive {
                    object: r.clone(),
                    source,
                });
            }
        };
        match self.api(r, &resource).get_opt(&r.name).await {
            Ok(Some(obj)) => Ok(to_value(&obj).ok()),
            Ok(None) => Ok(None),
            Err(source) => Err(Error::ReadLive {
                object: r.clone(),
                source,
            }),
        }
    }

    /// The pods in `namespace` with this label selector (`key=value,...`), as JSON; for the
    /// failure reasons of a commit's jobs.
    pub async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<Value>, kube::Error> {
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&kube::api::ListParams::default().labels(selector))
            .await?;
        Ok(list
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect())
    }

    /// Reads an object and dry-runs its apply: what the apply of its wave would do.
    async fn check<'a>(
        &self,
        o: &'a PlannedObject,
        crds: &BTreeMap<(String, String, String), Resource>,
        requests: &AtomicUsize,
    ) -> Result<Checked<'a>, ObjectError> {
        let r = &o.reference;
        let resource = match self.resources.get(&r.group, &r.version, &r.kind) {
            Some(res) => res,
            None => match crds.get(&(r.group.clone(), r.version.clone(), r.kind.clone())) {
                Some(res) => res.clone(),
                None => match self.resolve(r, requests).await {
                    Ok(Some(res)) => res,
                    Ok(None) => return Err(object_error(o, unknown_kind(r))),
                    Err(e) => return Err(object_error(o, format!("discovery: {e}"))),
                },
            },
        };
        requests.fetch_add(1, Ordering::Relaxed);
        let live = self
            .api(r, &resource)
            .get_opt(&r.name)
            .await
            .map_err(|e| object_error(o, format!("read the live object: {}", reason(&e))))?;
        if replaces(o, live.as_ref()) {
            return Ok(Checked {
                object: o,
                resource,
                action: Action::Configured,
                take_over: None,
                replace: true,
            });
        }
        let dry_run = self
            .server_side_apply(o, &resource, true, requests)
            .await
            .map_err(|e| object_error(o, reason(&e)))?;
        let (action, take_over) = match live {
            None => (Action::Created, None),
            Some(live) => {
                let live = to_value(&live).map_err(|e| object_error(o, e))?;
                let editors = foreign_editors(&live, &self.field_manager, &self.override_managers);
                let take = (!editors.is_empty()).then(|| {
                    let take = TakeOver {
                        resource_version: live
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        managed_fields: drift::take_over(&live, &self.field_manager, &editors),
                    };
                    (editors, take)
                });
                if take.is_some() || needs_apply(&dry_run, &live, &self.field_manager) {
                    (Action::Configured, take)
                } else {
                    (Action::Unchanged, None)
                }
            }
        };
        Ok(Checked {
            object: o,
            resource,
            action,
            take_over,
            replace: false,
        })
    }

    /// Deletes the live object (background propagation: its pods go with it), waits until it
    /// is gone, and creates it from the commit.
    async fn replace(
        &self,
        o: &PlannedObject,
        resource: &Resource,
        requests: &AtomicUsize,
    ) -> Result<(), String> {
        let api = self.api(&o.reference, resource);
        requests.fetch_add(1, Ordering::Relaxed);
        match api
            .delete(&o.reference.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(format!("replace: delete the old object: {}", reason(&e))),
        }
        let start = Instant::now();
        loop {
            requests.fetch_add(1, Ordering::Relaxed);
            match api.get_opt(&o.reference.name).await {
                Ok(None) => break,
                Ok(Some(_)) if start.elapsed() < REPLACE_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Some(_)) => {
                    return Err(format!(
                        "replace: the old object is still being deleted after {REPLACE_TIMEOUT:?}"
                    ));
                }
                Err(e) => return Err(format!("replace: read the old object: {}", reason(&e))),
            }
        }
        self.server_side_apply(o, resource, false, requests)
            .await
            .map(|_| ())
            .map_err(|e| format!("replace: create it again: {}", reason(&e)))
    }

    /// One server-side apply of `o` (a dry-run when `dry_run`); the object the API server
    /// returns.
    async fn server_side_apply(
        &self,
        o: &PlannedObject,
        resource: &Resource,
        dry_run: bool,
        requests: &AtomicUsize,
    ) -> Result<Value, kube::Error> {
        let mut params = PatchParams::apply(&self.field_manager)
            .force()
            .validation_strict();
        if dry_run {
            params = params.dry_run();
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let applied = self
            .api(&o.reference, resource)
            .patch(&o.reference.name, &params, &Patch::Apply(&o.object))
            .await?;
        serde_json::to_value(applied).map_err(kube::Error::SerdeError)
    }

    /// Makes graft the owner of what other managers changed: replaces the live object's
    /// managed fields, only if it is still at the version the fields were computed from. A
    /// busy object (a controller writing its status) moves on in between: read it again and
    /// retry, a few times.
    async fn take_over_fields(
        &self,
        o: &PlannedObject,
        resource: &Resource,
        take: &TakeOver,
        requests: &AtomicUsize,
    ) -> Result<(), kube::Error> {
        let api = self.api(&o.reference, resource);
        let (mut version, mut fields) =
            (take.resource_version.clone(), take.managed_fields.clone());
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A merge patch replaces the list whole; its resourceVersion is a precondition.
            let patch = serde_json::json!({"metadata": {
                "resourceVersion": version,
                "managedFields": fields,
            }});
            requests.fetch_add(1, Ordering::Relaxed);
            match api
                .patch(
                    &o.reference.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => {
                    requests.fetch_add(1, Ordering::Relaxed);
                    let Some(live) = api.get_opt(&o.reference.name).await? else {
                        return Ok(());
                    };
                    let live = serde_json::to_value(live).map_err(kube::Error::SerdeError)?;
                    let editors =
                        foreign_editors(&live, &self.field_manager, &self.override_managers);
                    if editors.is_empty() {
                        return Ok(());
                    }
                    fields = drift::take_over(&live, &self.field_manager, &editors);
                    version = live
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes one object: `Ok(true)` when deleted, `Ok(false)` when already gone.
    async fn delete(&self, r: &ObjectRef, requests: &AtomicUsize) -> Result<bool, String> {
        let resource = match self.resolve_any_version(r, requests).await {
            Ok(Some(res)) => res,
            Ok(None) => return Ok(false),
            Err(e) => return Err(format!("discovery: {e}")),
        };
        requests.fetch_add(1, Ordering::Relaxed);
        match self
            .api(r, &resource)
            .delete(&r.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
            Err(e) => Err(reason(&e)),
        }
    }

    /// Polls a CRD until it is `Established`; on timeout, how long and what was seen last.
    async fn wait_established(
        &self,
        name: &str,
        requests: &AtomicUsize,
    ) -> Result<(), (Duration, String)> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &crd_resource());
        let start = Instant::now();
        loop {
            requests.fetch_add(1, Ordering::Relaxed);
            let last = match api.get_opt(name).await {
                Ok(Some(crd)) => match to_value(&crd) {
                    Ok(v) if established(&v) => return Ok(()),
                    Ok(v) => format!(
                        "conditions {}",
                        v.pointer("/status/conditions").unwrap_or(&Value::Null)
                    ),
                    Err(e) => e,
                },
                Ok(None) => "it does not exist".to_string(),
                Err(e) => reason(&e),
            };
            if start.elapsed() >= self.crd_timeout {
                return Err((self.crd_timeout, last));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Namespaces of the plan that do not exist yet (objects in them cannot be dry-run).
    async fn missing_namespaces(
        &self,
        plan: &ApplyPlan,
        requests: &AtomicUsize,
    ) -> BTreeSet<String> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &namespace_resource());
        let names: Vec<&str> = plan
            .objects()
            .filter(|o| o.reference.group.is_empty() && o.reference.kind == "Namespace")
            .map(|o| o.reference.name.as_str())
            .collect();
        let reads: Vec<_> = names
            .into_iter()
            .map(|name| {
                let api = &api;
                async move {
                    requests.fetch_add(1, Ordering::Relaxed);
                    // On a read error, assume it exists: the dry-run will then say what is wrong.
                    let missing = matches!(api.get_metadata_opt(name).await, Ok(None));
                    (name.to_string(), missing)
                }
            })
            .collect();
        let found: Vec<(String, bool)> = buffered(reads, self.concurrency).await;
        found
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect()
    }

    /// The REST resource of exactly the object's group, version and kind: cached, or asked of
    /// the API server; `None` when it is not served.
    async fn resolve(
        &self,
        r: &ObjectRef,
        requests: &AtomicUsize,
    ) -> Result<Option<Resource>, kube::Error> {
        if let Some(res) = self.resources.get(&r.group, &r.version, &r.kind) {
            return Ok(Some(res));
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let gvk = GroupVersionKind::gvk(&r.group, &r.version, &r.kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((ar, caps)) => {
                let namespaced = caps.scope == Scope::Namespaced;
                self.resources.insert(ar.clone(), namespaced);
                Ok(Some((ar, namespaced)))
            }
            // A group-version that is not served answers a plain-text 404, not a Status.
            Err(kube::Error::Api(s)) if s.code == 404 || s.is_not_found() => Ok(None),
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`Applier::resolve`], falling back to any served version of the group and kind
    /// (an inventory may name a version that has since been removed).
    async fn resolve_any_version(
        &self,
        r: &ObjectRef,
        requests: &AtomicUsize,
    ) -> Result<Option<Resource>, kube::Error> {
        match self.resolve(r, requests).await? {
            Some(res) => Ok(Some(res)),
            None => Ok(self.resources.any_version(&r.group, &r.kind)),
        }
    }

    fn api(&self, r: &ObjectRef, (ar, namespaced): &Resource) -> Api<DynamicObject> {
        match (&r.namespace, namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, ar),
            _ => Api::all_with(self.client.clone(), ar),
        }
    }
}

/// Runs `futures` at most `n` at a time and returns their outputs in order.
///
/// The futures are built first (with `Iterator::map`) instead of with
/// `stream::iter(..).map(closure).buffered(n)`: rustc cannot prove the higher-ranked bound of a
/// stream's closure over borrowed items (rust-lang/rust#102211), which made every caller's
/// future `!Send` and forced the sync onto a blocking thread.
/// How long a replaced job may take to be deleted before it is created again.
const REPLACE_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `o` replaces `live`: both carry a spec hash ([`crate::plan::SPEC_HASH`]) and they
/// differ. A live object without one (applied before, or by someone else) is patched.
fn replaces(o: &PlannedObject, live: Option<&DynamicObject>) -> bool {
    let Some(want) = o.spec_hash() else {
        return false;
    };
    live.and_then(|l| l.metadata.annotations.as_ref())
        .and_then(|a| a.get(crate::plan::SPEC_HASH))
        .is_some_and(|have| have != want)
}

async fn buffered<F: std::future::Future>(futures: Vec<F>, n: usize) -> Vec<F::Output> {
    stream::iter(futures).buffered(n).collect().await
}

fn split<T>(results: Vec<Result<T, ObjectError>>) -> (Vec<T>, Vec<ObjectError>) {
    let mut ok = Vec::new();
    let mut err = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => err.push(e),
        }
    }
    (ok, err)
}

fn object_error(o: &PlannedObject, reason: String) -> ObjectError {
    ObjectError {
        location: o.location.clone(),
        reference: o.reference.clone(),
        reason,
    }
}

fn unknown_kind(r: &ObjectRef) -> String {
    format!(
        "unknown kind {} in {}: the cluster does not serve it and no CustomResourceDefinition of this commit defines it",
        r.kind,
        r.api_version()
    )
}

/// The API server's message for an API error (it names the field and the reason), the
/// client's error otherwise.
fn reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            if s.reason.is_empty() {
                s.message.clone()
            } else {
                format!("{} ({})", s.message, s.reason)
            }
        }
        other => other.to_string(),
    }
}

fn to_value(obj: &DynamicObject) -> Result<Value, String> {
    serde_json::to_value(obj).map_err(|e| format!("encode the live object: {e}"))
}
