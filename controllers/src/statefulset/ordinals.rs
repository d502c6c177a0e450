//! Ordinal arithmetic of an Advanced StatefulSet (kruise `getStatefulSetReplicasRange`,
//! `GetReserveOrdinalIntSet`, `getParentNameAndOrdinal`): which ordinals the replicas get, which
//! pods are condemned, and how a pod name splits into its set and ordinal.

use graft_api::apps::v1beta1::StatefulSetSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The reserved ordinals (`spec.reserveOrdinals`): integers and `"a-b"` ranges, kept as ranges
/// so a wide range costs nothing.
///
/// As kruise does, one unparsable range (`"5-3"`, `"x"`, `"1-2-3"`) makes the whole set empty
/// (`GetReserveOrdinalIntSet` logs and returns nil); the webhook rejects such specs, so this only
/// matters for objects stored before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReservedOrdinals {
    ranges: Vec<(i64, i64)>,
}

impl ReservedOrdinals {
    /// Parses `spec.reserveOrdinals`.
    pub fn parse(values: &[IntOrString]) -> Self {
        let mut ranges = Vec::with_capacity(values.len());
        for v in values {
            match v {
                IntOrString::Int(i) => ranges.push((i64::from(*i), i64::from(*i))),
                IntOrString::String(s) => match parse_range(s) {
                    Some(r) => ranges.push(r),
                    None => return Self::default(),
                },
            }
        }
        Self { ranges }
    }

    /// Whether `ordinal` is reserved.
    pub fn contains(&self, ordinal: i64) -> bool {
        self.ranges
            .iter()
            .any(|&(a, b)| a <= ordinal && ordinal <= b)
    }

    /// No ordinal is reserved.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The first ordinal at or after `ordinal` that is not reserved (jumps over whole ranges).
    pub fn next_free(&self, mut ordinal: i64) -> i64 {
        while let Some(&(_, b)) = self
            .ranges
            .iter()
            .find(|&&(a, b)| a <= ordinal && ordinal <= b)
        {
            ordinal = b.saturating_add(1);
        }
        ordinal
    }
}

/// kruise `ParseRange`: exactly two `-`-separated integers, start ≤ end.
fn parse_range(s: &str) -> Option<(i64, i64)> {
    let mut parts = s.split('-');
    let (a, b) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Where the replicas of a set live: ordinals `start..end` minus the reserved ones, exactly
/// `replicas` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrdinalRange {
    /// First ordinal (`spec.ordinals.start`, default 0), inclusive.
    pub start: i64,
    /// One past the highest replica ordinal.
    pub end: i64,
    /// The reserved ordinals.
    pub reserved: ReservedOrdinals,
}

impl OrdinalRange {
    /// The range of `spec` (replicas defaulted to 1 when absent, negative counts as 0).
    pub fn of(spec: &StatefulSetSpec) -> Self {
        let start = i64::from(spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0));
        let reserved = ReservedOrdinals::parse(spec.reserve_ordinals.as_deref().unwrap_or(&[]));
        Self::new(start, spec.replicas.unwrap_or(1), reserved)
    }

    /// The range of `replicas` ordinals from `start`, skipping `reserved`.
    pub fn new(start: i64, replicas: i32, reserved: ReservedOrdinals) -> Self {
        let mut end = start;
        for _ in 0..replicas.max(0) {
            end = reserved.next_free(end) + 1;
        }
        Self {
            start,
            end,
            reserved,
        }
    }

    /// The replica ordinals in ascending order (reserve `[1]`, 3 replicas → 0, 2, 3).
    pub fn replica_ordinals(&self) -> impl Iterator<Item = i64> + '_ {
        std::iter::successors(Some(self.reserved.next_free(self.start)), |&o| {
            Some(self.reserved.next_free(o + 1))
        })
        .take_while(|&o| o < self.end)
    }

    /// A pod at `ordinal` is a replica: in range and not reserved (`podInOrdinalRange`).
    pub fn is_replica(&self, ordinal: i64) -> bool {
        self.start <= ordinal && ordinal < self.end && !self.reserved.contains(ordinal)
    }

    /// A pod at a valid `ordinal` that is not a replica is condemned: out of range or reserved.
    pub fn is_condemned(&self, ordinal: i64) -> bool {
        ordinal >= 0 && !self.is_replica(ordinal)
    }
}

/// Splits a pod name into its set name and ordinal (`(.*)-([0-9]+)$`): `None` when the name does
/// not end in `-<digits>`; the ordinal is `None` when the digits overflow an `i32` (kruise: -1).
pub fn parse_pod_name(name: &str) -> Option<(&str, Option<i64>)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse::<i32>().ok().map(i64::from)))
}

/// The ordinal of a pod of set `set_name`: `None` when the pod is not a member (another parent
/// name) or its ordinal does not parse. Such pods are ignored, as kruise ignores them.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i64> {
    match parse_pod_name(pod_name)? {
        (parent, Some(o)) if parent == set_name => Some(o),
        _ => None,
    }
}

/// The name of the pod of `set_name` at `ordinal`: `<set>-<ordinal>`.
pub fn pod_name(set_name: &str, ordinal: i64) -> String {
    format!("{set_name}-{ordinal}")
}

/// The name of the PVC of template `claim` for the pod at `ordinal`: `<claim>-<set>-<ordinal>`.
pub fn claim_name(claim: &str, set_name: &str, ordinal: i64) -> String {
    format!("{claim}-{set_name}-{ordinal}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn reserve(v: &[IntOrString]) -> ReservedOrdinals {
        ReservedOrdinals::parse(v)
    }

    fn int(i: i32) -> IntOrString {
        IntOrString::Int(i)
    }

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn replica_ordinals_table() {
        // (start, replicas, reserveOrdinals, expected ordinals, expected end)
        type Case = (i64, i32, Vec<IntOrString>, Vec<i64>, i64);
        let cases: Vec<Case> = vec![
            (0, 0, vec![], vec![], 0),
            (0, 3, vec![], vec![0, 1, 2], 3),
            (0, 3, vec![int(1)], vec![0, 2, 3], 4),
            (0, 3, vec![int(0), s("2-4")], vec![1, 5, 6], 7),
            (0, 2, vec![s("3-5")], vec![0, 1], 2),
            (0, 3, vec![int(1), int(1)], vec![0, 2, 3], 4),
            (2, 4, vec![int(1), int(3)], vec![2, 4, 5, 6], 7),
            (5, 2, vec![], vec![5, 6], 7),
            (5, 2, vec![int(5)], vec![6, 7], 8),
            // An invalid range empties the whole set, as kruise's GetReserveOrdinalIntSet does.
            (0, 3, vec![int(1), s("4-2")], vec![0, 1, 2], 3),
            (0, 3, vec![int(1), s("x")], vec![0, 1, 2], 3),
            (0, 3, vec![s("1-2-3")], vec![0, 1, 2], 3),
            (0, 2, vec![s("0-0")], vec![1, 2], 3),
        ];
        for (start, replicas, reserved, want, end) in cases {
            let r = OrdinalRange::new(start, replicas, reserve(&reserved));
            let got: Vec<i64> = r.replica_ordinals().collect();
            assert_eq!(
                got, want,
                "start {start} replicas {replicas} reserve {reserved:?}"
            );
            assert_eq!(r.end, end, "end for {reserved:?}");
        }
    }

    #[test]
    fn condemned_table() {
        // reserve [1], start 0, replicas 3 → replicas 0, 2, 3.
        let r = OrdinalRange::new(0, 3, reserve(&[int(1)]));
        let cases = [
            (0, false),
            (1, true),
            (2, false),
            (3, false),
            (4, true),
            (9, true),
        ];
        for (ordinal, condemned) in cases {
            assert_eq!(r.is_condemned(ordinal), condemned, "ordinal {ordinal}");
            assert_eq!(r.is_replica(ordinal), !condemned, "ordinal {ordinal}");
        }
        // Below ordinals.start: condemned too.
        let r = OrdinalRange::new(3, 2, ReservedOrdinals::default());
        assert!(r.is_condemned(0));
        assert!(r.is_condemned(2));
        assert!(!r.is_condemned(3));
        assert!(r.is_condemned(5));
    }

    #[test]
    fn wide_ranges_are_not_expanded() {
        let r = reserve(&[s("10-2000000000")]);
        assert!(r.contains(1_999_999_999));
        assert!(!r.contains(9));
        let range = OrdinalRange::new(0, 12, r);
        assert_eq!(range.replica_ordinals().last(), Some(2_000_000_002));
    }

    #[test]
    fn pod_name_parsing_table() {
        let cases = [
            ("web-0", Some(("web", Some(0)))),
            ("web-12", Some(("web", Some(12)))),
            ("my-web-3", Some(("my-web", Some(3)))),
            ("web-1-2", Some(("web-1", Some(2)))),
            ("web-01", Some(("web", Some(1)))),
            ("web-99999999999", Some(("web", None))),
            ("web", None),
            ("web-", None),
            ("web-a", None),
            ("web-1a", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_pod_name(name), want, "{name}");
        }
        assert_eq!(ordinal_of("web", "web-3"), Some(3));
        assert_eq!(ordinal_of("web", "my-web-3"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(pod_name("web", 4), "web-4");
        assert_eq!(claim_name("data", "web", 4), "data-web-4");
    }
}
