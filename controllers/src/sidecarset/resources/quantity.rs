//! The slice of Kubernetes' `resource.Quantity` that `resourcesPolicy` needs: parse, add, negate,
//! compare, `MilliValue`/`SetMilli`, and the canonical string, with apimachinery's rounding
//! (values are kept as whole nano-units; parsing rounds finer values away from zero).

use std::cmp::Ordering;
use std::fmt;

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

/// How a quantity prints, taken from the suffix it was parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `m`, `k`, `M`, … or no suffix.
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, ….
    BinarySI,
    /// `e3`, `E6`, ….
    DecimalExponent,
}

/// A resource quantity: an exact count of nano-units and the format it prints in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// apimachinery's parse errors, with its messages.
pub const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const ERR_SUFFIX: &str = "unable to parse quantity's suffix";
const ERR_NUMERIC: &str = "unable to parse numeric part of quantity";

impl Quantity {
    /// Zero (`resource.Quantity{}` and `NewQuantity(0, DecimalSI)` behave alike here).
    pub fn zero() -> Self {
        Self::from_milli(0)
    }

    /// `NewMilliQuantity(milli, DecimalSI)`.
    pub fn from_milli(milli: i64) -> Self {
        Self {
            nanos: i128::from(milli) * NANOS_PER_MILLI,
            format: Format::DecimalSI,
        }
    }

    /// `NewQuantity(value, DecimalSI)`.
    pub fn from_units(value: i64) -> Self {
        Self {
            nanos: i128::from(value) * NANOS_PER_UNIT,
            format: Format::DecimalSI,
        }
    }

    /// `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(ERR_FORMAT_WRONG.to_string());
        }
        let parts = split_quantity(s).ok_or_else(|| ERR_FORMAT_WRONG.to_string())?;
        let (base, exponent, mut format) = interpret_suffix(parts.suffix)?;
        let denom = parts.denom.trim_end_matches('0');
        let digits = format!("{}{}", parts.num, denom);
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| ERR_NUMERIC.to_string())?
        };
        let magnitude = scaled_nanos(mantissa, denom.len(), base, exponent)?;
        if format == Format::BinarySI && magnitude > 0 && magnitude < NANOS_PER_UNIT {
            format = Format::DecimalSI;
        }
        let nanos = if parts.positive {
            magnitude
        } else {
            -magnitude
        };
        Ok(Self { nanos, format })
    }

    /// `IsZero`.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the value is below zero (`Sign() < 0`).
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// `Add`: a zero receiver takes the other's format.
    pub fn add(&mut self, other: &Quantity) {
        if self.nanos == 0 {
            self.format = other.format;
        }
        self.nanos += other.nanos;
    }

    /// `Neg`.
    pub fn neg(&mut self) {
        self.nanos = -self.nanos;
    }

    /// `MilliValue`: the value in milli-units, rounded away from zero.
    pub fn milli_value(&self) -> i64 {
        let m = div_away_from_zero(self.nanos, NANOS_PER_MILLI);
        i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX })
    }

    /// `SetMilli`: the value becomes `milli` milli-units; the format stays.
    pub fn set_milli(&mut self, milli: i64) {
        self.nanos = i128::from(milli) * NANOS_PER_MILLI;
    }

    /// `Cmp`.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    /// The canonical form apimachinery serializes (`CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySI
            && self.nanos.abs() >= 1024 * NANOS_PER_UNIT
            && self.nanos % NANOS_PER_UNIT == 0
        {
            let (amount, power) = remove_factors(self.nanos / NANOS_PER_UNIT, 1024);
            let (amount, power) = cap_binary_power(amount, power);
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power as usize];
            return write!(f, "{amount}{suffix}");
        }
        let (amount, exponent) = canonical_decimal(self.nanos);
        if self.format == Format::DecimalExponent {
            return match exponent {
                0 => write!(f, "{amount}"),
                e => write!(f, "{amount}e{e}"),
            };
        }
        let (amount, exponent) = cap_decimal_exponent(amount, exponent);
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        };
        write!(f, "{amount}{suffix}")
    }
}

/// The pieces of a quantity string (`parseQuantityString`).
struct QuantityParts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn split_quantity(s: &str) -> Option<QuantityParts<'_>> {
    let (positive, rest) = match s.as_bytes().first()? {
        b'-' => (false, &s[1..]),
        b'+' => (true, &s[1..]),
        _ => (true, s),
    };
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let num = rest[..int_end].trim_start_matches('0');
    let mut rest = &rest[int_end..];
    let mut denom = "";
    // Like apimachinery, "." and "-" alone are zero and "1.G" is allowed.
    if let Some(after_dot) = rest.strip_prefix('.') {
        let end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        denom = &after_dot[..end];
        rest = &after_dot[end..];
    }
    let letters = rest
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(rest.len());
    let tail = &rest[letters..];
    let tail = tail.strip_prefix(['+', '-']).unwrap_or(tail);
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(QuantityParts {
        positive,
        num,
        denom,
        suffix: rest,
    })
}

/// The suffix as `(base, exponent, format)`: `10^exponent` or `2^exponent`.
fn interpret_suffix(suffix: &str) -> Result<(i128, i64, Format), String> {
    let decimal = |e: i64| (10, e, Format::DecimalSI);
    Ok(match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => (2, 10, Format::BinarySI),
        "Mi" => (2, 20, Format::BinarySI),
        "Gi" => (2, 30, Format::BinarySI),
        "Ti" => (2, 40, Format::BinarySI),
        "Pi" => (2, 50, Format::BinarySI),
        "Ei" => (2, 60, Format::BinarySI),
        s if s.len() > 1 && s.starts_with(['e', 'E']) => {
            let e: i64 = s[1..].parse().map_err(|_| ERR_SUFFIX.to_string())?;
            (10, e, Format::DecimalExponent)
        }
        _ => return Err(ERR_SUFFIX.to_string()),
    })
}

/// `mantissa × 10^-denom_len × base^exponent` in nano-units, rounded away from zero.
fn scaled_nanos(
    mantissa: i128,
    denom_len: usize,
    base: i128,
    exponent: i64,
) -> Result<i128, String> {
    let too_big = || "quantity is too large for graft".to_string();
    let denom_len = i64::try_from(denom_len).map_err(|_| too_big())?;
    if base == 2 {
        let factor = u32::try_from(exponent)
            .ok()
            .and_then(|e| 2i128.checked_pow(e))
            .ok_or_else(too_big)?;
        let up = mantissa
            .checked_mul(factor)
            .and_then(|v| v.checked_mul(NANOS_PER_UNIT))
            .ok_or_else(too_big)?;
        let down = pow10(denom_len).ok_or_else(too_big)?;
        return Ok(div_away_from_zero(up, down));
    }
    let shift = exponent + 9 - denom_len;
    if shift >= 0 {
        let factor = pow10(shift).ok_or_else(too_big)?;
        return mantissa.checked_mul(factor).ok_or_else(too_big);
    }
    match pow10(-shift) {
        Some(down) => Ok(div_away_from_zero(mantissa, down)),
        // Far below one nano-unit: a non-zero value rounds up to one.
        None => Ok(i128::from(mantissa != 0)),
    }
}

fn pow10(e: i64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(e).ok()?)
}

fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n < 0 {
        q - 1
    } else {
        q + 1
    }
}

fn remove_factors(mut value: i128, base: i128) -> (i128, u32) {
    let mut times = 0;
    while value != 0 && value % base == 0 {
        value /= base;
        times += 1;
    }
    (value, times)
}

/// Mantissa and base-10 exponent (a multiple of 3) of a nano-unit count (`AsCanonicalBytes`).
fn canonical_decimal(nanos: i128) -> (i128, i32) {
    let (amount, times) = remove_factors(nanos, 10);
    let exponent = times as i32 - 9;
    match exponent.rem_euclid(3) {
        1 => (amount * 10, exponent - 1),
        2 => (amount * 100, exponent - 2),
        _ => (amount, exponent),
    }
}

fn cap_decimal_exponent(mut amount: i128, mut exponent: i32) -> (i128, i32) {
    while exponent > 18 {
        amount *= 1000;
        exponent -= 3;
    }
    (amount, exponent)
}

fn cap_binary_power(mut amount: i128, mut power: u32) -> (i128, u32) {
    while power > 6 {
        amount *= 1024;
        power -= 1;
    }
    (amount, power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_then_print_is_apimachinery_canonical_form() {
        for (input, canonical) in [
            ("0", "0"),
            ("100m", "100m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1", "1"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("1500k", "1500k"),
            ("2000k", "2M"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("1.5m", "1500u"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("-100m", "-100m"),
            ("+2", "2"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
            (".", "0"),
            ("1.G", "1G"),
            ("1e-20", "1e-9"),
            ("0.0000000000001m", "1n"),
        ] {
            let q = Quantity::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(q.to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn parse_errors_carry_apimachinery_messages() {
        for (input, message) in [
            ("", ERR_FORMAT_WRONG),
            ("abc", ERR_FORMAT_WRONG),
            ("1.2.3", ERR_FORMAT_WRONG),
            ("1e3m", ERR_FORMAT_WRONG),
            ("1x", ERR_FORMAT_WRONG),
            ("1K", ERR_SUFFIX),
            ("1Mx", ERR_FORMAT_WRONG),
            ("1ii", ERR_SUFFIX),
        ] {
            assert_eq!(Quantity::parse(input).unwrap_err(), message, "{input:?}");
        }
    }

    #[test]
    fn arithmetic_follows_apimachinery() {
        let mut q = Quantity::zero();
        q.add(&Quantity::parse("1Gi").unwrap());
        assert_eq!(
            q.format,
            Format::BinarySI,
            "a zero receiver takes the format"
        );
        q.add(&Quantity::parse("512Mi").unwrap());
        assert_eq!(q.to_string(), "1536Mi");
        assert_eq!(Quantity::parse("1n").unwrap().milli_value(), 1, "rounds up");
        assert_eq!(Quantity::parse("-1n").unwrap().milli_value(), -1);
        let mut m = Quantity::parse("1Gi").unwrap();
        m.set_milli(512 * 1024 * 1024 * 1000);
        assert_eq!(m.to_string(), "512Mi", "SetMilli keeps the format");
        m.neg();
        assert!(m.is_negative());
        assert_eq!(m.to_string(), "-512Mi");
        assert_eq!(
            Quantity::parse("1")
                .unwrap()
                .cmp_value(&Quantity::parse("1000m").unwrap()),
            Ordering::Equal
        );
    }
}
