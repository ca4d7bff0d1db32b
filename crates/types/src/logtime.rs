//! The cluster log's line prefix: `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message`, with pid
//! and tid as 8 hex digits as in the WSFC log. Pure formatting from a Unix time in milliseconds; not
//! the clock and not the file.

use crate::LogLevel;

/// One complete cluster-log line (without the trailing newline).
pub fn format_log_line(
    pid: u32,
    tid: u32,
    unix_ms: u64,
    level: LogLevel,
    component: &str,
    message: &str,
) -> String {
    format!(
        "{pid:08x}.{tid:08x}::{} {level} [{component}] {message}",
        format_log_time(unix_ms)
    )
}

/// `YYYY/MM/DD-HH:MM:SS.mmm` in UTC.
pub fn format_log_time(unix_ms: u64) -> String {
    let [y, mo, d, h, mi, s, ms] = civil_parts(unix_ms);
    format!("{y:04}/{mo:02}/{d:02}-{h:02}:{mi:02}:{s:02}.{ms:03}")
}

/// ISO 8601 UTC with milliseconds (`2026-11-25T07:37:22.123Z`), for JSON records.
pub fn format_iso_time(unix_ms: u64) -> String {
    let [y, mo, d, h, mi, s, ms] = civil_parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// [year, month, day, hour, minute, second, millisecond] in UTC.
fn civil_parts(unix_ms: u64) -> [i64; 7] {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, (secs % 86_400) as i64);
    let (y, m, d) = civil_from_days(days);
    [
        y,
        i64::from(m),
        i64::from(d),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        (unix_ms % 1000) as i64,
    ]
}

/// Unix milliseconds of a cluster-log line's time stamp (`PID.TID::YYYY/MM/DD-HH:MM:SS.mmm …`);
/// None when the line is not in that format.
pub fn parse_log_line_time(line: &str) -> Option<u64> {
    parse_stamp(line.get(line.find("::")? + 2..)?.get(..23)?)
}

/// Unix milliseconds of an ISO 8601 UTC time as [`format_iso_time`] writes it.
pub fn parse_iso_time(text: &str) -> Option<u64> {
    parse_stamp(text)
}

/// Reads `YYYY?MM?DD?hh?mm?ss?mmm` (any separators, fixed positions) as Unix milliseconds.
fn parse_stamp(stamp: &str) -> Option<u64> {
    let num = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let days = days_from_civil(y, mo as u32, d as u32);
    u64::try_from(((days * 24 + h) * 60 + mi) * 60 * 1000 + s * 1000 + ms).ok()
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_wsfc_log() {
        // 2009/06/17-20:07:57.900, the seed's deadlock example.
        let ms = 1_245_269_277_900;
        assert_eq!(format_log_time(ms), "2009/06/17-20:07:57.900");
        assert_eq!(
            format_log_line(0xf1c, 0xf28, ms, LogLevel::Err, "RHS", "x"),
            "00000f1c.00000f28::2009/06/17-20:07:57.900 ERR [RHS] x"
        );
        assert_eq!(format_iso_time(ms), "2009-06-17T20:07:57.900Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let line = format_log_line(1, 2, ms, LogLevel::Info, "RCM", "hello");
        assert_eq!(parse_log_line_time(&line), Some(ms));
        assert_eq!(parse_log_line_time("garbage"), None);
        assert_eq!(parse_iso_time(&format_iso_time(ms)), Some(ms));
        for days in [0, 59, 60, 365, 11_016, 20_454] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
