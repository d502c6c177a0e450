use super::*;
use pretty_assertions::assert_eq;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The next `n` activations after `from`, as RFC 3339 UTC.
fn runs(spec: &str, from: &str, n: usize) -> Vec<String> {
    let s = parse_standard(spec).unwrap();
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = s.next(t).unwrap();
        out.push(t.to_string());
    }
    out
}

#[test]
fn every_minute_and_steps() {
    assert_eq!(
        runs("*/1 * * * *", "2026-12-03T19:58:30.5Z", 3),
        [
            "2026-12-03T19:59:00Z",
            "2026-12-03T20:00:00Z",
            "2026-12-03T20:01:00Z"
        ]
    );
    // exactly on a boundary: strictly after
    assert_eq!(
        runs("*/15 * * * *", "2026-12-03T20:00:00Z", 2),
        ["2026-12-03T20:15:00Z", "2026-12-03T20:30:00Z"]
    );
    assert_eq!(
        runs("5-10/5,59 3 * * *", "2026-12-03T00:00:00Z", 3),
        [
            "2026-12-03T03:05:00Z",
            "2026-12-03T03:10:00Z",
            "2026-12-03T03:59:00Z"
        ]
    );
    // "N/step" means N-max/step
    assert_eq!(
        runs("50/5 * * * *", "2026-12-03T00:00:00Z", 3),
        [
            "2026-12-03T00:50:00Z",
            "2026-12-03T00:55:00Z",
            "2026-12-03T01:50:00Z"
        ]
    );
}

#[test]
fn names_and_question_mark() {
    // 2026-12-03 is a Thursday.
    assert_eq!(
        runs("0 9 ? jan-MAR Mon-fri", "2026-12-03T00:00:00Z", 2),
        ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"]
    );
    assert_eq!(
        runs("0 0 * * SUN", "2026-12-03T00:00:00Z", 1),
        ["2026-12-06T00:00:00Z"]
    );
}

#[test]
fn day_of_month_or_day_of_week_when_both_restricted() {
    // the 13th or a Friday (2026-12-04 is a Friday)
    assert_eq!(
        runs("0 0 13 * 5", "2026-12-03T00:00:00Z", 3),
        [
            "2026-12-04T00:00:00Z",
            "2026-12-11T00:00:00Z",
            "2026-12-13T00:00:00Z"
        ]
    );
    // a stepped star is restricted too: days 1, 11, 21, 31 or a Monday
    assert_eq!(
        runs("0 0 */10 * MON", "2026-12-03T00:00:00Z", 3),
        [
            "2026-12-07T00:00:00Z",
            "2026-12-11T00:00:00Z",
            "2026-12-14T00:00:00Z"
        ]
    );
    // one of them a star: both must match (only Fridays)
    assert_eq!(
        runs("0 0 * * 5", "2026-12-03T00:00:00Z", 2),
        ["2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z"]
    );
}

#[test]
fn descriptors() {
    let from = "2026-12-03T10:20:00Z";
    assert_eq!(runs("@yearly", from, 1), ["2027-01-01T00:00:00Z"]);
    assert_eq!(runs("@annually", from, 1), ["2027-01-01T00:00:00Z"]);
    assert_eq!(runs("@monthly", from, 1), ["2027-01-01T00:00:00Z"]);
    assert_eq!(runs("@weekly", from, 1), ["2026-12-06T00:00:00Z"]);
    assert_eq!(runs("@daily", from, 1), ["2026-12-04T00:00:00Z"]);
    assert_eq!(runs("@midnight", from, 1), ["2026-12-04T00:00:00Z"]);
    assert_eq!(
        runs("@hourly", from, 2),
        ["2026-12-03T11:00:00Z", "2026-12-03T12:00:00Z"]
    );
    // @every counts from the given time, whole seconds, at least one
    assert_eq!(
        runs("@every 1m30s", "2026-12-03T10:20:00.25Z", 2),
        ["2026-12-03T10:21:30Z", "2026-12-03T10:23:00Z"]
    );
    assert_eq!(
        runs("@every 10ms", "2026-12-03T10:20:00Z", 1),
        ["2026-12-03T10:20:01Z"]
    );
}

#[test]
fn time_zone_prefixes() {
    assert_eq!(
        runs("TZ=Asia/Shanghai 0 9 * * *", "2026-12-03T00:00:00Z", 2),
        ["2026-12-03T01:00:00Z", "2026-12-04T01:00:00Z"]
    );
    assert_eq!(
        runs("CRON_TZ=America/New_York @daily", "2026-12-03T00:00:00Z", 1),
        ["2026-12-03T05:00:00Z"]
    );
    assert_eq!(
        format_schedule("0 9 * * *", Some("Asia/Shanghai")),
        "TZ=Asia/Shanghai 0 9 * * *"
    );
    assert_eq!(
        format_schedule("TZ=UTC 0 9 * * *", Some("Asia/Shanghai")),
        "TZ=UTC 0 9 * * *"
    );
    assert_eq!(
        format_schedule("0 9 * * *", Some("Nowhere/City")),
        "0 9 * * *"
    );
    assert_eq!(format_schedule("0 9 * * *", None), "0 9 * * *");
}

#[test]
fn spring_forward_gap_is_skipped_that_day() {
    // America/New_York 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
    assert_eq!(
        runs("TZ=America/New_York 30 2 * * *", "2026-03-07T00:00:00Z", 2),
        ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
    );
    // an hourly job loses the missing hour and keeps elapsed-time spacing
    assert_eq!(
        runs("TZ=America/New_York 0 * * * *", "2026-03-08T06:30:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]
    );
}

#[test]
fn fall_back_hour_runs_in_both_copies() {
    // America/New_York 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    assert_eq!(
        runs("TZ=America/New_York 30 1 * * *", "2026-10-31T12:00:00Z", 3),
        [
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
    // a daily job outside the repeated hour runs once, at the new offset
    assert_eq!(
        runs("TZ=America/New_York 0 9 * * *", "2026-10-31T12:00:00Z", 2),
        ["2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z"]
    );
}

#[test]
fn impossible_dates_have_no_next_run() {
    let s = parse_standard("0 0 30 2 *").unwrap();
    assert_eq!(s.next(ts("2026-12-03T00:00:00Z")), None);
    // but the 29th of February comes within five years
    assert_eq!(
        runs("0 0 29 2 *", "2026-12-03T00:00:00Z", 1),
        ["2028-02-29T00:00:00Z"]
    );
}

#[test]
fn parse_errors_are_robfigs() {
    let cases = [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("foo", "expected exactly 5 fields, found 1: [foo]"),
        (
            "0 0 0 * * *",
            "expected exactly 5 fields, found 6: [0 0 0 * * *]",
        ),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        (
            "5-1 * * * *",
            "beginning of range (5) beyond end of range (1): 5-1",
        ),
        (
            "*/0 * * * *",
            "step of range should be a positive number: */0",
        ),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        (
            "x * * * *",
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            "* * * FOO *",
            "failed to parse int from FOO: strconv.Atoi: parsing \"FOO\": invalid syntax",
        ),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        (
            "@every 5",
            "failed to parse duration @every 5: time: missing unit in duration \"5\"",
        ),
        (
            "@every 5x",
            "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
        ),
        (
            "@every abc",
            "failed to parse duration @every abc: time: invalid duration \"abc\"",
        ),
        (
            "TZ=Mars/Olympus 0 * * * *",
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
        ),
        ("TZ=UTC", "runtime error: slice bounds out of range [:-1]"),
    ];
    for (spec, want) in cases {
        match parse_standard(spec) {
            Ok(_) => panic!("{spec:?} parsed"),
            Err(e) => assert_eq!(e.to_string(), want, "{spec:?}"),
        }
    }
    assert!(matches!(
        parse_standard("TZ=UTC"),
        Err(ParseError::Panic(_))
    ));
}

#[test]
fn locations_load_as_go_does() {
    assert!(load_location("America/New_York").is_ok());
    assert!(load_location("UTC").is_ok());
    assert!(load_location("").is_ok());
    assert_eq!(
        load_location("america/new_york").unwrap_err(),
        "unknown time zone america/new_york"
    );
    assert_eq!(
        load_location("../etc/passwd").unwrap_err(),
        "time: invalid location name"
    );
}
