//! Cron schedules as OpenKruise reads them: robfig/cron v3's `ParseStandard` (five fields, month
//! and weekday names, ranges, steps, `?`, the `@yearly`…`@hourly` descriptors, `@every
//! <duration>`, a `TZ=`/`CRON_TZ=` prefix) with its error messages, and its `Next` search, whose
//! daylight-saving behaviour kruise's users see: a time in a spring-forward gap is skipped that
//! day, a time in a fall-back hour runs in both copies of the hour.
//!
//! Time zones come from the IANA database bundled into the binary (graft's image has no
//! `/usr/share/zoneinfo`); names are matched exactly, as Go's `time.LoadLocation` does on Linux.
//! The controller's own zone ("Local") is UTC.

use std::fmt;
use std::sync::OnceLock;

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::{TimeZone, TimeZoneDatabase};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Why a schedule does not parse, in robfig/cron's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// robfig returned this error.
    Invalid(String),
    /// robfig panics on this input (a `TZ=` prefix with no space after it); kruise's webhook
    /// recovers and reports the runtime error.
    Panic(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Invalid(m) | ParseError::Panic(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ParseError {}

fn invalid(msg: impl Into<String>) -> ParseError {
    ParseError::Invalid(msg.into())
}

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Spec(Spec),
    /// `@every`: whole seconds, at least one.
    Every(i64),
}

#[derive(Clone, Debug)]
struct Spec {
    second: u64,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    tz: TimeZone,
}

/// Set when a field's first range is `*` or `?` (robfig's `starBit`): day-of-month and
/// day-of-week then both have to match instead of either.
const STAR: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

fn bits(min: u64, max: u64, step: u64) -> u64 {
    let mut b = 0u64;
    let mut i = min;
    while i <= max && i < 64 {
        b |= 1 << i;
        i += step;
    }
    b
}

fn all(r: &Bounds) -> u64 {
    bits(r.min, r.max, 1) | STAR
}

/// The bundled IANA database (never the host's, so tests and the image agree).
fn tzdb() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Go's `time.LoadLocation` with the controller's zone being UTC: `""`, `UTC` and `Local` are UTC,
/// other names must be IANA names, spelled exactly.
pub fn load_location(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(TimeZone::UTC);
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    match tzdb().get(name) {
        Ok(tz) if tz.iana_name() == Some(name) => Ok(tz),
        _ => Err(format!("unknown time zone {name}")),
    }
}

/// kruise's `formatSchedule`: a schedule mentioning `TZ` is used as it is; otherwise a
/// `timeZone` that loads becomes a `TZ=` prefix (one that does not is ignored).
pub fn format_schedule(schedule: &str, time_zone: Option<&str>) -> String {
    if schedule.contains("TZ") {
        return schedule.to_string();
    }
    match time_zone {
        Some(tz) if load_location(tz).is_ok() => format!("TZ={tz} {schedule}"),
        _ => schedule.to_string(),
    }
}

/// robfig/cron's `ParseStandard`.
pub fn parse_standard(spec: &str) -> Result<Schedule, ParseError> {
    if spec.is_empty() {
        return Err(invalid("empty spec string"));
    }
    let mut tz = TimeZone::UTC;
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(space) = spec.find(' ') else {
            return Err(ParseError::Panic(
                "runtime error: slice bounds out of range [:-1]".into(),
            ));
        };
        let name = &spec[eq + 1..space];
        tz = load_location(name)
            .map_err(|e| invalid(format!("provided bad location {name}: {e}")))?;
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec, tz);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(invalid(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        )));
    }
    Ok(Schedule(Kind::Spec(Spec {
        second: 1,
        minute: field(fields[0], &MINUTES)?,
        hour: field(fields[1], &HOURS)?,
        dom: field(fields[2], &DOM)?,
        month: field(fields[3], &MONTHS)?,
        dow: field(fields[4], &DOW)?,
        tz,
    })))
}

fn descriptor(d: &str, tz: TimeZone) -> Result<Schedule, ParseError> {
    let spec = |minute, hour, dom, month, dow| {
        Ok(Schedule(Kind::Spec(Spec {
            second: 1,
            minute,
            hour,
            dom,
            month,
            dow,
            tz: tz.clone(),
        })))
    };
    match d {
        "@yearly" | "@annually" => return spec(1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "@monthly" => return spec(1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
        "@weekly" => return spec(1, 1, all(&DOM), all(&MONTHS), 1),
        "@daily" | "@midnight" => return spec(1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => return spec(1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {}
    }
    if let Some(rest) = d.strip_prefix("@every ") {
        let nanos = parse_go_duration(rest)
            .map_err(|e| invalid(format!("failed to parse duration {d}: {e}")))?;
        let secs = (nanos.max(1_000_000_000) / 1_000_000_000) as i64;
        return Ok(Schedule(Kind::Every(secs)));
    }
    Err(invalid(format!("unrecognized descriptor: {d}")))
}

fn field(f: &str, r: &Bounds) -> Result<u64, ParseError> {
    let mut b = 0;
    for expr in f.split(',').filter(|e| !e.is_empty()) {
        b |= range(expr, r)?;
    }
    Ok(b)
}

fn range(expr: &str, r: &Bounds) -> Result<u64, ParseError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra);
    if low_high[0] == "*" || low_high[0] == "?" {
        (start, end, extra) = (r.min, r.max, STAR);
    } else {
        start = int_or_name(low_high[0], r)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], r)?,
            _ => return Err(invalid(format!("too many hyphens: {expr}"))),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(invalid(format!("too many slashes: {expr}"))),
    };
    if start < r.min {
        return Err(invalid(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        )));
    }
    if end > r.max {
        return Err(invalid(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        )));
    }
    if start > end {
        return Err(invalid(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(invalid(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    Ok(bits(start, end, step) | extra)
}

fn int_or_name(expr: &str, r: &Bounds) -> Result<u64, ParseError> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = r.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    parse_int(expr)
}

/// Go's `strconv.Atoi` (optional sign, decimal digits), then robfig's "no negatives".
fn parse_int(expr: &str) -> Result<u64, ParseError> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let syntax = || {
        invalid(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"
        ))
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(syntax());
    }
    let Ok(n) = expr.parse::<i64>() else {
        return Err(invalid(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        )));
    };
    if n < 0 {
        return Err(invalid(format!(
            "negative number ({n}) not allowed: {expr}"
        )));
    }
    Ok(n as u64)
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration(orig: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    const LIMIT: i128 = 1 << 63;
    while !s.is_empty() {
        let c = s.as_bytes()[0];
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(bad());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac = &rest[..n];
            s = &rest[n..];
            if int_part.is_empty() && frac.is_empty() {
                return Err(bad());
            }
        } else if int_part.is_empty() {
            return Err(bad());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: i128 = match unit_str {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {unit_str:?} in duration {orig:?}"
                ));
            }
        };
        let mut v: i128 = 0;
        for d in int_part.bytes() {
            v = v * 10 + i128::from(d - b'0');
            if v > LIMIT {
                return Err(bad());
            }
        }
        v *= unit;
        if v > LIMIT {
            return Err(bad());
        }
        if !frac.is_empty() {
            let mut f: f64 = 0.0;
            let mut scale: f64 = 1.0;
            for d in frac.bytes().take(18) {
                f = f * 10.0 + f64::from(d - b'0');
                scale *= 10.0;
            }
            v += (f * (unit as f64 / scale)) as i128;
            if v > LIMIT {
                return Err(bad());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(bad());
        }
    }
    if neg {
        return Ok(-total);
    }
    if total > LIMIT - 1 {
        return Err(bad());
    }
    Ok(total)
}

impl Schedule {
    /// The first activation strictly after `t` (robfig's `Next`); `None` when there is none within
    /// five years (e.g. February 30).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        match &self.0 {
            Kind::Every(secs) => {
                let nanos = i64::from(t.subsec_nanosecond());
                t.checked_add(SignedDuration::from_secs(*secs) - SignedDuration::from_nanos(nanos))
                    .ok()
            }
            Kind::Spec(s) => s.next(t),
        }
    }
}

/// Go's `time.Date(y, m, d, h, mi, s, 0, tz)` for a civil time that may not exist or may exist
/// twice: the offset in force at the civil time read as UTC, corrected once by the offset at
/// the instant that gives (so a gap resolves to before the gap, a fold to the first copy).
fn go_date(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    let as_utc = dt.to_zoned(TimeZone::UTC).ok()?.timestamp();
    let off1 = tz.to_offset(as_utc);
    let guess = as_utc
        .checked_sub(SignedDuration::from_secs(i64::from(off1.seconds())))
        .ok()?;
    let off = tz.to_offset(guess);
    as_utc
        .checked_sub(SignedDuration::from_secs(i64::from(off.seconds())))
        .ok()
}

/// Go's `t.AddDate(0, months, days)` in `tz` (civil arithmetic with Go's normalisation of
/// overflowing days, then [`go_date`]).
fn add_date(t: Timestamp, tz: &TimeZone, months: i32, days: i32) -> Option<Timestamp> {
    let c = t.to_zoned(tz.clone()).datetime();
    let m0 = i32::from(c.month()) - 1 + months;
    let year = i32::from(c.year()) + m0.div_euclid(12);
    let month = m0.rem_euclid(12) + 1;
    let first = Date::new(i16::try_from(year).ok()?, i8::try_from(month).ok()?, 1).ok()?;
    let date = first
        .checked_add(SignedDuration::from_hours(
            24 * i64::from(i32::from(c.day()) - 1 + days),
        ))
        .ok()?;
    go_date(date.to_datetime(c.time()), tz)
}

fn civil(t: Timestamp, tz: &TimeZone) -> DateTime {
    t.to_zoned(tz.clone()).datetime()
}

fn at(c: DateTime, h: i8, mi: i8) -> Option<DateTime> {
    Some(
        c.date()
            .to_datetime(k8s_openapi::jiff::civil::Time::new(h, mi, 0, 0).ok()?),
    )
}

impl Spec {
    fn day_matches(&self, c: DateTime) -> bool {
        let dom = (1u64 << c.day()) & self.dom != 0;
        let dow = (1u64 << c.weekday().to_sunday_zero_offset()) & self.dow != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let tz = &self.tz;
        let hour = SignedDuration::from_hours(1);
        let minute = SignedDuration::from_mins(1);
        let second = SignedDuration::from_secs(1);
        // The upcoming whole second.
        let mut t = t
            .checked_add(second - SignedDuration::from_nanos(i64::from(t.subsec_nanosecond())))
            .ok()?;
        let mut added = false;
        let year_limit = civil(t, tz).year() + 5;
        'wrap: loop {
            if civil(t, tz).year() > year_limit {
                return None;
            }
            while (1u64 << civil(t, tz).month()) & self.month == 0 {
                if !added {
                    added = true;
                    let c = civil(t, tz);
                    t = go_date(
                        Date::new(c.year(), c.month(), 1)
                            .ok()?
                            .to_datetime(k8s_openapi::jiff::civil::Time::midnight()),
                        tz,
                    )?;
                }
                t = add_date(t, tz, 1, 0)?;
                if civil(t, tz).month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(civil(t, tz)) {
                if !added {
                    added = true;
                    t = go_date(at(civil(t, tz), 0, 0)?, tz)?;
                }
                t = add_date(t, tz, 0, 1)?;
                // A day that does not start at midnight (a DST change at midnight): robfig moves
                // to the nearer midnight.
                let h = civil(t, tz).hour();
                if h != 0 {
                    let shift = if h > 12 { 24 - h } else { -h };
                    t = t
                        .checked_add(SignedDuration::from_hours(i64::from(shift)))
                        .ok()?;
                }
                if civil(t, tz).day() == 1 {
                    continue 'wrap;
                }
            }
            while (1u64 << civil(t, tz).hour()) & self.hour == 0 {
                if !added {
                    added = true;
                    let c = civil(t, tz);
                    t = go_date(at(c, c.hour(), 0)?, tz)?;
                }
                t = t.checked_add(hour).ok()?;
                if civil(t, tz).hour() == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << civil(t, tz).minute()) & self.minute == 0 {
                if !added {
                    added = true;
                    t = Timestamp::from_second(t.as_second().div_euclid(60) * 60).ok()?;
                }
                t = t.checked_add(minute).ok()?;
                if civil(t, tz).minute() == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << civil(t, tz).second()) & self.second == 0 {
                if !added {
                    added = true;
                    t = Timestamp::from_second(t.as_second()).ok()?;
                }
                t = t.checked_add(second).ok()?;
                if civil(t, tz).second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t);
        }
    }
}

#[cfg(test)]
mod tests;
