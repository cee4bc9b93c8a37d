//! HTTP dates (RFC 9110 §5.6.7): written as IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`, the `Date` and `Last-Modified` of
//! every answer), read in all three forms a recipient must accept.

use super::syntax::trim_ows;

/// Seconds since the Unix epoch as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil date from a day count (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[((days + 3) % 7) as usize], // 1 January 1970 was a Thursday
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An HTTP-date (RFC 9110 §5.6.7) as seconds since the epoch: IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37
/// GMT` or asctime `Sun Nov  6 08:49:37 1994`. Case-sensitive, as the
/// grammar says. `now` (seconds) places a two-digit year.
pub(crate) fn parse_http_date(raw: &[u8], now: i64) -> Option<i64> {
    let text = std::str::from_utf8(trim_ows(raw)).ok()?;
    let b = text.as_bytes();
    if let Some((day, rest)) = text.split_once(", ") {
        let r = rest.as_bytes();
        if DAYS.contains(&day) {
            // 06 Nov 1994 08:49:37 GMT
            if r.len() != 24 || r[2] != b' ' || r[6] != b' ' || r[11] != b' ' || &r[20..] != b" GMT" {
                return None;
            }
            return civil(number(&r[7..11])?, month(&r[3..6])?, number(&r[..2])?, &r[12..20]);
        }
        if LONG_DAYS.contains(&day) {
            // 06-Nov-94 08:49:37 GMT
            if r.len() != 22 || r[2] != b'-' || r[6] != b'-' || r[9] != b' ' || &r[18..] != b" GMT" {
                return None;
            }
            let year = two_digit_year(number(&r[7..9])?, now);
            return civil(year, month(&r[3..6])?, number(&r[..2])?, &r[10..18]);
        }
        return None;
    }
    // Sun Nov  6 08:49:37 1994
    if b.len() != 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[19] != b' ' {
        return None;
    }
    if !DAYS.contains(&&text[..3]) {
        return None;
    }
    let day = match &b[8..10] {
        [b' ', d] => number(&[*d])?,
        two => number(two)?,
    };
    civil(number(&b[20..])?, month(&b[4..7])?, day, &b[11..19])
}

/// §5.6.7: a two-digit year that appears more than 50 years in the future
/// is the most recent past year with the same last two digits.
fn two_digit_year(yy: i64, now: i64) -> i64 {
    let this_year: i64 = http_date(now.max(0) as u64)[12..16].parse().unwrap_or(1970);
    let year = this_year - this_year % 100 + yy;
    if year > this_year + 50 { year - 100 } else { year }
}

/// Fixed-width decimal digits.
fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn month(name: &[u8]) -> Option<i64> {
    MONTHS.iter().position(|m| m.as_bytes() == name).map(|i| i as i64 + 1)
}

/// Seconds since the epoch of a valid date and `HH:MM:SS` time (a leap
/// second, `:60`, is allowed and counts as the next second).
fn civil(year: i64, month: i64, day: i64, time: &[u8]) -> Option<i64> {
    if time.len() != 8 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (h, m, s) = (number(&time[..2])?, number(&time[3..5])?, number(&time[6..])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month[month as usize - 1] {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_imf_fixdate() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT");
        // Century years are not leap years unless divisible by 400.
        assert_eq!(http_date(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(http_date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(http_date(13_574_563_200), "Tue, 29 Feb 2400 00:00:00 GMT");
    }

    /// RFC 9110 §5.6.7: the three forms of the same instant, and what is not a date.
    #[test]
    fn http_dates_in_all_three_forms() {
        let now = 1_750_000_000; // June 2025
        let sunday = 784_111_777;
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", now), Some(sunday));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", now), Some(sunday));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994", now), Some(sunday));
        assert_eq!(parse_http_date(b" Sun, 06 Nov 1994 08:49:37 GMT\t", now), Some(sunday));
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT", now), Some(0));
        assert_eq!(parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT", now), Some(951_782_400));
        assert_eq!(parse_http_date(b"Wed Nov 18 11:06:40 2026", now), Some(1_795_000_000));
        assert_eq!(parse_http_date(b"Wed, 31 Dec 1969 23:59:59 GMT", now), Some(-1));
        // A two-digit year more than 50 years ahead belongs to the last century.
        assert_eq!(parse_http_date(b"Wednesday, 01-Jan-70 00:00:00 GMT", now), Some(3_155_760_000));
        assert_eq!(parse_http_date(b"Tuesday, 01-Jan-75 00:00:00 GMT", now), Some(3_313_526_400));
        assert_eq!(parse_http_date(b"Saturday, 01-Jan-77 00:00:00 GMT", now), Some(220_924_800));
        assert_eq!(parse_http_date(b"Saturday, 01-Jan-00 00:00:00 GMT", now), Some(946_684_800));
        for bad in [
            "",
            "garbage",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 GMT junk",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 2100 00:00:00 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Xyz Nov  6 08:49:37 1994",
            "1994-11-06T08:49:37Z",
            "784111777",
        ] {
            assert_eq!(parse_http_date(bad.as_bytes(), now), None, "{bad:?}");
        }
    }
}
