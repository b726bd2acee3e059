//! The dates of Release files (`Date`, `Valid-Until`): RFC 2822 / RFC 1123
//! style, e.g. `Sat, 21 Nov 2026 09:15:44 UTC`, as written by dak and
//! reprepro and read by apt. Converted to seconds since the Unix epoch.
//!
//! Only the forms archives use are accepted (numeric or UTC/GMT/Z zones);
//! this is not a general date library.

use anyhow::{Context, Result, bail};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses `[Day, ]DD Mon YYYY HH:MM:SS ZONE` into Unix seconds.
pub fn parse_rfc2822(s: &str) -> Result<i64> {
    let inner = || -> Result<i64> {
        let mut parts: Vec<&str> = s.split_whitespace().collect();
        // The weekday is informative only (RFC 2822 3.3); drop it.
        if parts.first().is_some_and(|p| p.ends_with(',')) {
            parts.remove(0);
        }
        let [day, mon, year, time, zone] = parts[..] else {
            bail!("expected `DD Mon YYYY HH:MM:SS ZONE`");
        };
        let day: u32 = day.parse().context("day")?;
        let month = MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(mon))
            .with_context(|| format!("unknown month {mon:?}"))? as u32
            + 1;
        let year: i64 = year.parse().context("year")?;
        // Bounded so that the arithmetic below cannot overflow.
        if !(1970..=9999).contains(&year) {
            bail!("year {year} out of range");
        }
        let hms: Vec<&str> = time.split(':').collect();
        let [h, m, sec] = hms[..] else {
            bail!("expected HH:MM:SS, got {time:?}");
        };
        let (h, m, sec): (i64, i64, i64) = (
            h.parse().context("hour")?,
            m.parse().context("minute")?,
            sec.parse().context("second")?,
        );
        // 60 allows a leap second, as RFC 2822 does.
        if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || h < 0 || m < 0 || sec < 0 {
            bail!("field out of range");
        }
        let offset = zone_offset(zone)?;
        let days = days_from_civil(year, month, day);
        Ok(days * 86_400 + h * 3600 + m * 60 + sec - offset)
    };
    inner().with_context(|| format!("invalid date {s:?}"))
}

/// Seconds east of UTC.
fn zone_offset(zone: &str) -> Result<i64> {
    match zone {
        "UTC" | "GMT" | "Z" | "UT" => Ok(0),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().context("zone")?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            Ok(if z.starts_with('-') { -secs } else { secs })
        }
        z => bail!("unknown time zone {z:?}"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the
/// inverse of [`days_from_civil`], from the same public-domain algorithms).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            era * 400 + yoe + 1
        } else {
            era * 400 + yoe
        },
        m,
        d,
    )
}

/// Unix seconds as RFC 3339 UTC, e.g. `2025-11-28T00:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_the_parser() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_252_544), "2026-11-21T09:15:44Z");
        // Leap days and the turn of a century.
        for s in [
            "29 Feb 2024 23:59:59 UTC",
            "01 Mar 2100 00:00:00 UTC",
            "31 Dec 1999 12:00:00 UTC",
        ] {
            let secs = parse_rfc2822(s).unwrap() as u64;
            let back = rfc3339(secs);
            let again = format!(
                "{} {} {} {} UTC",
                &back[8..10],
                MONTHS[back[5..7].parse::<usize>().unwrap() - 1],
                &back[..4],
                &back[11..19]
            );
            assert_eq!(parse_rfc2822(&again).unwrap() as u64, secs, "{s} -> {back}");
        }
    }

    #[test]
    fn parses_archive_dates() {
        // `date -u -d '2026-11-21 09:15:44' +%s`
        assert_eq!(
            parse_rfc2822("Sat, 21 Nov 2026 09:15:44 UTC").unwrap(),
            1_795_252_544
        );
        assert_eq!(parse_rfc2822("01 Jan 1970 00:00:00 GMT").unwrap(), 0);
        assert_eq!(
            parse_rfc2822("Thu, 29 Feb 2024 12:00:00 +0100").unwrap(),
            1_709_204_400
        );
        assert_eq!(
            parse_rfc2822("Thu, 29 Feb 2024 12:00:00 -0030").unwrap(),
            1_709_209_800
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "Sat, 21 Nov 2026",
            "21 Foo 2026 09:15:44 UTC",
            "21 Nov 2026 25:00:00 UTC",
            "21 Nov 2026 09:15:44 CEST",
            "21 Nov 2026 09:15 UTC",
            "21 Nov 99999999999999 09:15:44 UTC",
        ] {
            assert!(parse_rfc2822(bad).is_err(), "{bad:?}");
        }
    }
}
