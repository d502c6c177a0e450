//! Expectations: what this controller has just done and not yet seen in its watch cache.
//!
//! The shared caches lag behind our own writes. Planning from a cache that does not yet show a pod we
//! created (or still shows one we deleted, or an old version of one we patched) would create or
//! delete twice. So every write records an expectation, and a CloneSet is only planned once all of
//! its expectations are observed — or have timed out (a lost watch event must not wedge it).
//! The same holds for an ImagePullJob and the NodeImages it writes its tag into. Owner keys carry
//! the kind when it is not a CloneSet (`ImagePullJob:ns/name`), so owners of different kinds with
//! one name never share expectations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One thing we wait to observe in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expected {
    /// An object (a pod) we created must appear.
    Created(String),
    /// An object we deleted must disappear (or show a deletion timestamp).
    Deleted(String),
    /// An object we patched must show at least this resourceVersion.
    Patched(String, String),
}

/// What a cache shows of one object, by name, for [`Expectations::satisfied`].
pub trait CacheView {
    /// `None` if the object is absent, otherwise whether it is being deleted and its
    /// resourceVersion.
    fn lookup(&self, name: &str) -> Option<(bool, String)>;
}

/// The pod cache's [`CacheView`] (the name the CloneSet controller knows it by).
pub use CacheView as PodView;

/// Pending expectations per owner key (`namespace/name`).
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Vec<(Expected, Instant)>>>,
    timeout: Duration,
}

impl Expectations {
    /// Expectations that are given up after `timeout` (kruise's `--expectation-timeout`, 5 min).
    pub fn new(timeout: Duration) -> Self {
        Expectations {
            pending: Mutex::default(),
            timeout,
        }
    }

    /// Record that `owner` now waits for `what`.
    pub fn expect(&self, owner: &str, what: Expected) {
        if let Ok(mut map) = self.pending.lock() {
            map.entry(owner.to_string())
                .or_default()
                .push((what, Instant::now()));
        }
    }

    /// Drop one expectation of `owner` (the write it stood for failed).
    pub fn withdraw(&self, owner: &str, what: &Expected) {
        if let Ok(mut map) = self.pending.lock()
            && let Some(list) = map.get_mut(owner)
        {
            if let Some(i) = list.iter().position(|(w, _)| w == what) {
                list.remove(i);
            }
            if list.is_empty() {
                map.remove(owner);
            }
        }
    }

    /// Drop everything recorded for `owner` (it was deleted).
    pub fn forget(&self, owner: &str) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(owner);
        }
    }

    /// Remove what the cache now shows; true when nothing is pending for `owner`. Expectations older
    /// than the timeout count as observed.
    pub fn satisfied(&self, owner: &str, cache: &dyn CacheView) -> bool {
        let Ok(mut map) = self.pending.lock() else {
            return true;
        };
        let Some(list) = map.get_mut(owner) else {
            return true;
        };
        let timeout = self.timeout;
        list.retain(|(what, since)| {
            if since.elapsed() > timeout {
                return false;
            }
            match what {
                Expected::Created(name) => cache.lookup(name).is_none(),
                Expected::Deleted(name) => matches!(cache.lookup(name), Some((false, _))),
                Expected::Patched(name, rv) => match cache.lookup(name) {
                    Some((_, seen)) => !resource_version_reached(&seen, rv),
                    None => false,
                },
            }
        });
        let done = list.is_empty();
        if done {
            map.remove(owner);
        }
        done
    }
}

/// resourceVersions are opaque strings, but etcd's are increasing integers: compare them as such
/// when both parse, otherwise require equality.
fn resource_version_reached(seen: &str, wanted: &str) -> bool {
    match (seen.parse::<u64>(), wanted.parse::<u64>()) {
        (Ok(s), Ok(w)) => s >= w,
        _ => seen == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Cache(HashMap<String, (bool, String)>);
    impl CacheView for Cache {
        fn lookup(&self, name: &str) -> Option<(bool, String)> {
            self.0.get(name).cloned()
        }
    }

    fn cache(pods: &[(&str, bool, &str)]) -> Cache {
        Cache(
            pods.iter()
                .map(|(n, d, rv)| (n.to_string(), (*d, rv.to_string())))
                .collect(),
        )
    }

    #[test]
    fn a_created_pod_must_appear_before_the_owner_is_planned_again() {
        let e = Expectations::new(Duration::from_secs(300));
        e.expect("ns/cs", Expected::Created("cs-abcde".into()));
        assert!(!e.satisfied("ns/cs", &cache(&[])));
        assert!(e.satisfied("ns/cs", &cache(&[("cs-abcde", false, "7")])));
        assert!(
            e.satisfied("ns/other", &cache(&[])),
            "other owners are not blocked"
        );
    }

    #[test]
    fn a_deleted_pod_must_vanish_or_be_terminating() {
        let e = Expectations::new(Duration::from_secs(300));
        e.expect("ns/cs", Expected::Deleted("cs-a".into()));
        assert!(!e.satisfied("ns/cs", &cache(&[("cs-a", false, "1")])));
        assert!(e.satisfied("ns/cs", &cache(&[("cs-a", true, "2")])));
        e.expect("ns/cs", Expected::Deleted("cs-b".into()));
        assert!(e.satisfied("ns/cs", &cache(&[])));
    }

    #[test]
    fn a_patched_pod_must_show_the_new_resource_version() {
        let e = Expectations::new(Duration::from_secs(300));
        e.expect("ns/cs", Expected::Patched("cs-a".into(), "120".into()));
        assert!(!e.satisfied("ns/cs", &cache(&[("cs-a", false, "99")])));
        assert!(e.satisfied("ns/cs", &cache(&[("cs-a", false, "121")])));
    }

    #[test]
    fn expectations_time_out_so_a_lost_event_cannot_wedge_an_owner() {
        let e = Expectations::new(Duration::from_millis(0));
        e.expect("ns/cs", Expected::Created("cs-never".into()));
        std::thread::sleep(Duration::from_millis(2));
        assert!(e.satisfied("ns/cs", &cache(&[])));
    }
}
