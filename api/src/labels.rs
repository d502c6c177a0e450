//! Well-known label, annotation, finalizer and condition names: the pod contract shared with
//! OpenKruise components (kruise-api.md §1.1-1.3 and the per-kind sections). Exact strings.

// ---- revisions and identity -------------------------------------------------------------------

/// Pod label: the full ControllerRevision name `<parent>-<hash>` of the pod's revision.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// Pod label: the short revision hash (last `-` segment); CloneSet always writes it too.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Label defined by OpenKruise for workloads that need a prefixed revision hash label.
pub const KRUISE_CONTROLLER_REVISION_HASH: &str = "apps.kruise.io/controller-revision-hash";
/// ControllerRevision label: the hash part of the revision name.
pub const CONTROLLER_HASH: &str = "controller.kubernetes.io/hash";
/// Pod and PVC label: the 5-character instance id shared by a CloneSet pod and its PVCs.
pub const CLONESET_INSTANCE_ID: &str = "apps.kruise.io/cloneset-instance-id";
/// CloneSet label `"true"`: pods in `PreparingDelete` are not counted as replicas when scaling.
pub const CLONESET_SCALING_EXCLUDE_PREPARING_DELETE: &str =
    "apps.kruise.io/cloneset-scaling-exclude-preparing-delete";
/// Pod label (any value): delete this pod; honoured by CloneSet and Advanced StatefulSet.
pub const SPECIFIED_DELETE: &str = "apps.kruise.io/specified-delete";
/// Pod annotation honoured by CloneSet scale-in ordering (lower cost deleted first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Advanced StatefulSet pod label: the pod's name.
pub const STATEFULSET_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// Advanced StatefulSet pod label: the pod's ordinal.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";
/// Label prefix: a pod carrying any label with this prefix counts as unavailable (workloads and PUB).
pub const UNAVAILABLE_POD_LABEL_PREFIX: &str = "unavailable-pod.kruise.io/";

// ---- lifecycle ----------------------------------------------------------------------------------

/// Pod label: the lifecycle state, one of the `LIFECYCLE_STATE_*` values.
pub const LIFECYCLE_STATE: &str = "lifecycle.apps.kruise.io/state";
/// Pod annotation: RFC 3339 time of the last lifecycle transition.
pub const LIFECYCLE_TIMESTAMP: &str = "lifecycle.apps.kruise.io/timestamp";
/// Lifecycle state of a new pod before it becomes `Normal`.
pub const LIFECYCLE_STATE_PREPARING_NORMAL: &str = "PreparingNormal";
/// Lifecycle state of a pod in service.
pub const LIFECYCLE_STATE_NORMAL: &str = "Normal";
/// Lifecycle state while an in-place update waits for its hook.
pub const LIFECYCLE_STATE_PREPARING_UPDATE: &str = "PreparingUpdate";
/// Lifecycle state while an in-place update is applied.
pub const LIFECYCLE_STATE_UPDATING: &str = "Updating";
/// Lifecycle state after an in-place update, until the hook is all-hooked again.
pub const LIFECYCLE_STATE_UPDATED: &str = "Updated";
/// Lifecycle state while deletion waits for its hook.
pub const LIFECYCLE_STATE_PREPARING_DELETE: &str = "PreparingDelete";

// ---- in-place update ----------------------------------------------------------------------------

/// Pod annotation: JSON [`crate::annotations::InPlaceUpdateState`].
pub const INPLACE_UPDATE_STATE: &str = "apps.kruise.io/inplace-update-state";
/// Legacy key of [`INPLACE_UPDATE_STATE`], still read.
pub const INPLACE_UPDATE_STATE_LEGACY: &str = "inplace-update-state";
/// Pod annotation: JSON [`crate::annotations::InPlaceUpdateGrace`] parked during the grace period.
pub const INPLACE_UPDATE_GRACE: &str = "apps.kruise.io/inplace-update-grace";
/// Legacy key of [`INPLACE_UPDATE_GRACE`], still read.
pub const INPLACE_UPDATE_GRACE_LEGACY: &str = "inplace-update-grace";
/// Pod annotation written by the node agent: JSON [`crate::annotations::RuntimeContainerMetaSet`].
pub const RUNTIME_CONTAINERS_META: &str = "apps.kruise.io/runtime-containers-meta";
/// Readiness gate and pod condition: False while an in-place update is in progress.
pub const INPLACE_UPDATE_READY: &str = "InPlaceUpdateReady";
/// Reason set on `InPlaceUpdateReady=False` when an in-place update starts.
pub const INPLACE_UPDATE_READY_REASON_START: &str = "StartInPlaceUpdate";
/// Readiness gate and pod condition for pods of Kruise workloads; message is JSON
/// [`crate::annotations::PodNotReadyReasons`].
pub const KRUISE_POD_READY: &str = "KruisePodReady";
/// Pod condition of SidecarSet upgrades; message is a JSON map SidecarSet name to bool.
pub const SIDECARSET_UPGRADABLE: &str = "SidecarSetUpgradable";
/// Pod annotation: container launch priority.
pub const CONTAINER_LAUNCH_PRIORITY: &str = "apps.kruise.io/container-launch-priority";
/// Container env: launch priority, also orders in-place container updates.
pub const ENV_CONTAINER_PRIORITY: &str = "KRUISE_CONTAINER_PRIORITY";
/// Container env: launch barrier.
pub const ENV_CONTAINER_BARRIER: &str = "KRUISE_CONTAINER_BARRIER";

// ---- CloneSet image pre-download ---------------------------------------------------------------

/// ControllerRevision label `"true"`: ImagePullJobs for this revision were created.
pub const IMAGE_PREDOWNLOAD_CREATED: &str = "apps.kruise.io/pre-predownload-created";
/// ControllerRevision label `"true"`: pre-download was skipped for this revision.
pub const IMAGE_PREDOWNLOAD_IGNORED: &str = "apps.kruise.io/image-predownload-ignored";
/// CloneSet annotation (v1alpha1): parallelism of pre-download jobs (default 1).
pub const IMAGE_PREDOWNLOAD_PARALLELISM: &str = "apps.kruise.io/image-predownload-parallelism";
/// CloneSet annotation (v1alpha1): timeout of pre-download jobs in seconds (default 600).
pub const IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS: &str =
    "apps.kruise.io/image-predownload-timeout-seconds";
/// CloneSet annotation (v1alpha1): updated ready pods needed before pre-downloading.
pub const IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS: &str =
    "apps.kruise.io/image-predownload-min-updated-ready-pods";

// ---- SidecarSet ---------------------------------------------------------------------------------

/// SidecarSet and pod annotation: hash of the sidecar containers (on pods: JSON map
/// [`crate::annotations::SidecarSetHashes`]).
pub const SIDECARSET_HASH: &str = "kruise.io/sidecarset-hash";
/// Same as [`SIDECARSET_HASH`] computed with all images blanked.
pub const SIDECARSET_HASH_WITHOUT_IMAGE: &str = "kruise.io/sidecarset-hash-without-image";
/// Pod annotation: comma-joined names of the SidecarSets injected into the pod.
pub const SIDECARSET_INJECTED_LIST: &str = "kruise.io/sidecarset-injected-list";
/// graft: on a SidecarSet, `"true"` has the controller-owned pods created without its sidecars
/// (graft's pod webhook did not answer) deleted one at a time so that they come back injected.
pub const RECREATE_NOT_INJECTED: &str = "graft.dev/recreate-not-injected";
/// Pod annotation: JSON map SidecarSet name to [`crate::annotations::InPlaceUpdateState`].
pub const SIDECARSET_INPLACE_UPDATE_STATE: &str = "kruise.io/sidecarset-inplace-update-state";
/// Pod annotation: JSON map sidecar name to the working hot-upgrade twin (`{"X":"X-1"}`).
pub const SIDECARSET_WORKING_HOTUPGRADE_CONTAINER: &str =
    "kruise.io/sidecarset-working-hotupgrade-container";
/// Pod annotation prefix: `version.sidecarset.kruise.io/<container>`.
pub const SIDECARSET_VERSION_PREFIX: &str = "version.sidecarset.kruise.io/";
/// Pod annotation prefix: `versionalt.sidecarset.kruise.io/<container>`.
pub const SIDECARSET_VERSION_ALT_PREFIX: &str = "versionalt.sidecarset.kruise.io/";
/// ControllerRevision label naming the SidecarSet it belongs to.
pub const SIDECARSET_NAME: &str = "kruise.io/sidecarset-name";
/// SidecarSet label (v1alpha1) holding the custom version of the revision.
pub const SIDECARSET_CUSTOM_VERSION: &str = "apps.kruise.io/sidecarset-custom-version";
/// SidecarSet annotation: this SidecarSet is a canary of another one.
pub const SIDECARSET_CANARY: &str = "apps.kruise.io/sidecarset-canary";
/// SidecarSet annotation: name of the base SidecarSet of a canary.
pub const SIDECARSET_BASE: &str = "apps.kruise.io/sidecarset-base";
/// Env added to every injected container.
pub const ENV_IS_INJECTED: &str = "IS_INJECTED";
/// Env of hot-upgrade twins: version (from [`SIDECARSET_VERSION_PREFIX`]).
pub const ENV_SIDECARSET_VERSION: &str = "SIDECARSET_VERSION";
/// Env of hot-upgrade twins: alternate version (from [`SIDECARSET_VERSION_ALT_PREFIX`]).
pub const ENV_SIDECARSET_VERSION_ALT: &str = "SIDECARSET_VERSION_ALT";
/// Label on namespaces with their name, used by SidecarSet namespace selection.
pub const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

// ---- PodUnavailableBudget and deletion protection -------------------------------------------------

/// Pod annotation (v1.9.0): the PUB protecting this pod.
pub const PUB_RELATED: &str = "kruise.io/related-pub";
/// Pod annotation (master, written together with [`PUB_RELATED`]).
pub const PUB_RELATED_NEW: &str = "pub.kruise.io/related-pub";
/// Pod annotation `"true"`: bypass PUB protection.
pub const PUB_NO_PROTECT: &str = "pub.kruise.io/no-protect";
/// PUB annotation (v1alpha1): comma list of `DELETE,EVICT,UPDATE,RESIZE`.
pub const PUB_PROTECT_OPERATIONS: &str = "kruise.io/pub-protect-operations";
/// PUB annotation (v1alpha1): total replicas for custom workloads.
pub const PUB_PROTECT_TOTAL_REPLICAS: &str = "pub.kruise.io/protect-total-replicas";
/// Label on protected objects: [`DELETE_PROTECTION_ALWAYS`] or [`DELETE_PROTECTION_CASCADING`].
pub const DELETE_PROTECTION: &str = "policy.kruise.io/delete-protection";
/// Deletion is always denied while the label exists.
pub const DELETE_PROTECTION_ALWAYS: &str = "Always";
/// Deletion is denied while dependents exist.
pub const DELETE_PROTECTION_CASCADING: &str = "Cascading";

// ---- ContainerRecreateRequest -------------------------------------------------------------------

/// CRR label: UID of the target pod (immutable).
pub const CRR_POD_UID: &str = "crr.apps.kruise.io/pod-uid";
/// CRR label: node of the target pod (immutable).
pub const CRR_NODE_NAME: &str = "crr.apps.kruise.io/node-name";
/// CRR label `"true"` while the request is not finished.
pub const CRR_ACTIVE: &str = "crr.apps.kruise.io/active";
/// CRR annotation (v1alpha1): container status snapshot.
pub const CRR_SYNC_CONTAINER_STATUSES: &str = "crr.apps.kruise.io/sync-container-statuses";
/// CRR annotation and finalizer (v1alpha1): unready grace acquired.
pub const CRR_UNREADY_ACQUIRED: &str = "crr.apps.kruise.io/unready-acquired";

/// Annotation on a PVC an Advanced StatefulSet expanded (`OnPodRollingUpdate`): the set's name.
pub const PVC_OWNED_BY_ASTS: &str = "apps.kruise.io/owned-by-asts";

// ---- BroadcastJob, ImagePullJob, NodeImage ------------------------------------------------------

/// BroadcastJob pod label: the job name.
pub const BROADCASTJOB_NAME: &str = "broadcastjob-name";
/// BroadcastJob pod label: the job UID.
pub const BROADCASTJOB_CONTROLLER_UID: &str = "broadcastjob-controller-uid";
/// Finalizer on ImagePullJobs while synced secrets exist.
pub const DELETION_PROTECTION_FINALIZER: &str = "apps.kruise.io/deletion-protection";
/// Synced secret annotation: `<ns>/<name>` of the source secret.
pub const IMAGEPULLJOB_SOURCE_KEY: &str = "imagepulljobs.kruise.io/source-key";
/// Synced secret annotation: the jobs that reference the secret.
pub const IMAGEPULLJOB_REFERENCES: &str = "imagepulljobs.kruise.io/references";
/// NodeImage label: not deleted with its Node (fake NodeImage for tests).
pub const FAKE_NODEIMAGE: &str = "apps.kruise.io/fake-nodeimage";
/// CRI sandbox annotation the node agent adds to every image pull.
pub const PULLING_IMAGE_BY: &str = "apps.kruise.io/pulling-image-by";

// ---- graft --------------------------------------------------------------------------------------

/// Field manager graft uses for server-side apply.
pub const GRAFT_FIELD_MANAGER: &str = "graft";
/// Label graft sets on objects it applied from Git: the owning GitSync `<namespace>.<name>`.
pub const GRAFT_GITSYNC: &str = "graft.dev/gitsync";
/// Annotation graft sets on objects it applied from Git: the commit SHA.
pub const GRAFT_COMMIT: &str = "graft.dev/commit";
/// ImagePullJob label: the GitSync `<namespace>.<name>` whose commit the job pre-pulls.
pub const GRAFT_SYNC: &str = "graft.dev/sync";
