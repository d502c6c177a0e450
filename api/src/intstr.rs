//! IntOrString helpers: the OpenKruise rules for integer-or-percent fields (kruise-api.md §1.5).
//!
//! Since OpenKruise v1.9 numeric strings such as `"5"` are rejected for `maxUnavailable` and
//! `maxSurge` (#2111); only integers and `"N%"` strings are accepted.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{FieldError, FieldErrors};

/// A parsed IntOrString: an absolute number or a percentage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    /// An absolute count.
    Int(i32),
    /// A percentage of some total, e.g. `20` for `"20%"`.
    Percent(i32),
}

/// Parses an IntOrString that must be an integer or a `"N%"` string (numeric strings rejected).
pub fn parse(value: &IntOrString) -> Result<IntOrPercent, String> {
    match value {
        IntOrString::Int(i) => Ok(IntOrPercent::Int(*i)),
        IntOrString::String(s) => {
            let digits = s.strip_suffix('%').ok_or_else(|| {
                format!("{s:?} must be an integer or a percentage such as \"20%\"")
            })?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{s:?} is not a valid percentage"));
            }
            digits
                .parse::<i32>()
                .map(IntOrPercent::Percent)
                .map_err(|_| format!("{s:?} is not a valid percentage"))
        }
    }
}

/// Scales `value` against `total`: integers as they are, percentages rounded up or down
/// (Kubernetes `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    Ok(match parse(value)? {
        IntOrPercent::Int(i) => i,
        IntOrPercent::Percent(p) => {
            let prod = i64::from(p) * i64::from(total);
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    })
}

/// Checks an integer-or-percent field: not negative, percent at most 100%, no numeric strings.
pub fn validate_int_or_percent(value: &IntOrString, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    match parse(value) {
        Err(detail) => errs.push(FieldError::invalid(field, display(value), &detail)),
        Ok(IntOrPercent::Int(i)) if i < 0 => errs.push(FieldError::invalid(
            field,
            i,
            "must be greater than or equal to 0",
        )),
        Ok(IntOrPercent::Percent(p)) if p > 100 => errs.push(FieldError::invalid(
            field,
            display(value),
            "must not be greater than 100%",
        )),
        Ok(_) => {}
    }
    errs
}

/// The value as a user would write it (`3` or `20%`).
pub fn display(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Number of pods a partition keeps at old revisions (OpenKruise `CalculatePartitionReplicas`):
/// percentages round up; a percentage other than `"100%"` that rounds up to all replicas (with
/// more than one replica) keeps `replicas - 1`, so `"99%"` of 4 keeps 3 and updates 1; the
/// result is clamped to `[0, replicas]`.
pub fn partition_replicas(partition: Option<&IntOrString>, replicas: i32) -> Result<i32, String> {
    let Some(partition) = partition else {
        return Ok(0);
    };
    let mut p = scaled_value(partition, replicas, true)?;
    if let IntOrString::String(s) = partition
        && replicas > 1
        && p >= replicas
        && s != "100%"
    {
        p = replicas - 1;
    }
    Ok(p.clamp(0, replicas.max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_string())
    }

    #[test]
    fn parse_accepts_ints_and_percents_only() {
        assert_eq!(parse(&IntOrString::Int(3)), Ok(IntOrPercent::Int(3)));
        assert_eq!(parse(&s("20%")), Ok(IntOrPercent::Percent(20)));
        assert!(
            parse(&s("1")).is_err(),
            "numeric strings are rejected since kruise 1.9"
        );
        assert!(parse(&s("%")).is_err());
        assert!(parse(&s("-5%")).is_err());
        assert!(parse(&s("abc")).is_err());
    }

    #[test]
    fn scaled_rounding() {
        assert_eq!(scaled_value(&s("20%"), 3, true), Ok(1));
        assert_eq!(scaled_value(&s("20%"), 3, false), Ok(0));
        assert_eq!(scaled_value(&s("50%"), 5, true), Ok(3));
        assert_eq!(scaled_value(&s("50%"), 5, false), Ok(2));
        assert_eq!(scaled_value(&IntOrString::Int(7), 3, true), Ok(7));
    }

    #[test]
    fn partition_table() {
        // (partition, replicas, kept at old revision)
        let cases: &[(Option<IntOrString>, i32, i32)] = &[
            (None, 5, 0),
            (Some(IntOrString::Int(2)), 5, 2),
            (Some(IntOrString::Int(9)), 5, 5),
            (Some(s("99%")), 4, 3),
            (Some(s("100%")), 4, 4),
            (Some(s("50%")), 5, 3),
            (Some(s("1%")), 4, 1),
            (Some(s("0%")), 4, 0),
            (Some(s("99%")), 1, 1),
            (Some(s("80%")), 0, 0),
        ];
        for (p, replicas, want) in cases {
            assert_eq!(
                partition_replicas(p.as_ref(), *replicas),
                Ok(*want),
                "partition {p:?} of {replicas}"
            );
        }
    }

    #[test]
    fn validate_table() {
        assert!(validate_int_or_percent(&s("20%"), "f").is_empty());
        assert!(validate_int_or_percent(&IntOrString::Int(0), "f").is_empty());
        assert!(validate_int_or_percent(&s("100%"), "f").is_empty());
        assert!(validate_int_or_percent(&s("101%"), "f").has_field("f"));
        assert!(validate_int_or_percent(&s("1"), "f").has_field("f"));
        assert!(validate_int_or_percent(&IntOrString::Int(-1), "f").has_field("f"));
    }
}
