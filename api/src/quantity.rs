//! Resource quantities spelled as Go's `resource.Quantity` writes them (`CanonicalizeBytes`):
//! `"0.5"` is `"500m"`, `"1024Mi"` is `"1Gi"`, `"1000"` is `"1k"`. Objects that kruise-manager
//! decodes and writes back (SidecarSet containers, whose hash covers the JSON) carry this form.

/// How a quantity was written, which decides how Go writes it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Powers of 1024 (`Ki`, `Mi`, ...).
    BinarySI,
    /// Powers of 1000 (`m`, `k`, `M`, ...) or no suffix.
    DecimalSI,
    /// `e<exponent>`.
    DecimalExponent,
}

/// A parsed quantity: its exact value in nano units and its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Value × 10⁹ (Go keeps nano precision, rounding finer values up).
    pub nanos: i128,
    /// The format of the written suffix.
    pub format: Format,
}

/// Parses a quantity string as Go's `ParseQuantity` does; `None` when it does not parse.
pub fn parse(q: &str) -> Option<Parsed> {
    let q = q.trim();
    let (sign, q) = match q.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, q.strip_prefix('+').unwrap_or(q)),
    };
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut exp10: i32 = 9 - i32::try_from(frac_part.len()).ok()?;
    let mut factor: i128 = 1;
    let mut format = Format::DecimalSI;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            format = Format::BinarySI;
            let power = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            factor = 1 << power;
        }
        s => {
            let e = s.strip_prefix('e').or_else(|| s.strip_prefix('E'))?;
            exp10 += e.parse::<i32>().ok()?;
            format = Format::DecimalExponent;
        }
    }
    mantissa = mantissa.checked_mul(factor)?;
    while exp10 > 0 {
        mantissa = mantissa.checked_mul(10)?;
        exp10 -= 1;
    }
    while exp10 < 0 {
        // Finer than a nano unit: Go rounds up (away from zero).
        let rest = mantissa % 10;
        mantissa /= 10;
        if rest != 0 {
            mantissa += 1;
        }
        exp10 += 1;
    }
    Some(Parsed {
        nanos: sign * mantissa,
        format,
    })
}

/// The quantity as Go writes it; a string that does not parse is kept as written.
pub fn canonical(q: &str) -> String {
    parse(q).map_or_else(|| q.to_string(), format)
}

/// The quantity rounded up to milli units (`SetDefaults_ResourceList`), written as Go writes it.
pub fn round_up_milli(q: &str) -> String {
    match parse(q) {
        None => q.to_string(),
        Some(mut p) => {
            const MILLI: i128 = 1_000_000;
            let rest = p.nanos % MILLI;
            if rest != 0 {
                p.nanos += if p.nanos > 0 {
                    MILLI - rest
                } else {
                    -rest - MILLI
                };
            }
            format(p)
        }
    }
}

/// Writes a parsed quantity as Go's `CanonicalizeBytes`.
pub fn format(p: Parsed) -> String {
    if p.nanos == 0 {
        return "0".into();
    }
    let mut fmt = p.format;
    if fmt == Format::BinarySI
        && (p.nanos.abs() < 1024 * 1_000_000_000 || p.nanos % 1_000_000_000 != 0)
    {
        fmt = Format::DecimalSI;
    }
    if fmt == Format::BinarySI {
        let mut v = p.nanos / 1_000_000_000;
        let mut exp = 0;
        while v % 1024 == 0 && exp < 60 {
            v /= 1024;
            exp += 10;
        }
        let suffix = match exp {
            0 => "",
            10 => "Ki",
            20 => "Mi",
            30 => "Gi",
            40 => "Ti",
            50 => "Pi",
            _ => "Ei",
        };
        return format!("{v}{suffix}");
    }
    // Remove factors of ten, then bring the exponent down to a multiple of three.
    let mut v = p.nanos;
    let mut exp: i32 = -9;
    while v % 10 == 0 {
        v /= 10;
        exp += 1;
    }
    match exp.rem_euclid(3) {
        1 => {
            v *= 10;
            exp -= 1;
        }
        2 => {
            v *= 100;
            exp -= 2;
        }
        _ => {}
    }
    let suffix = if fmt == Format::DecimalSI {
        match exp {
            -9 => Some("n"),
            -6 => Some("u"),
            -3 => Some("m"),
            0 => Some(""),
            3 => Some("k"),
            6 => Some("M"),
            9 => Some("G"),
            12 => Some("T"),
            15 => Some("P"),
            18 => Some("E"),
            _ => None,
        }
    } else {
        None
    };
    match suffix {
        Some(s) => format!("{v}{s}"),
        None if exp == 0 => format!("{v}"),
        None => format!("{v}e{exp}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_as_go_writes_it() {
        for (input, want) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1000", "1k"),
            ("100", "100"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("128Mi", "128Mi"),
            ("100M", "100M"),
            ("0", "0"),
            ("0Mi", "0"),
            ("1e3", "1e3"),
            ("2", "2"),
            ("10", "10"),
            ("1Ki", "1Ki"),
            ("garbage", "garbage"),
        ] {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn round_up_to_milli() {
        assert_eq!(round_up_milli("1n"), "1m");
        assert_eq!(round_up_milli("100m"), "100m");
        assert_eq!(round_up_milli("1.0001"), "1001m");
        assert_eq!(round_up_milli("64Mi"), "64Mi");
    }
}
