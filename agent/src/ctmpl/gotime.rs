//! Go's `time.Time.Format` for `timestamp`: the layout elements templates use
//! (`2006-01-02T15:04:05Z07:00`, `Jan _2 3:04PM`, fractions), in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// time.Time.Format in UTC for the layout elements templates use.
pub fn format(t: SystemTime, layout: &str) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let nanos = d.subsec_nanos();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, dd) = civil(days);
    let (hh, mi, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let wd = (days + 4).rem_euclid(7) as usize;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let h12 = if hh % 12 == 0 { 12 } else { hh % 12 };
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let tokens: &[(&str, String)] = &[
        ("January", MONTHS[m as usize - 1].into()),
        ("Monday", DAYS[wd].into()),
        ("Z07:00", "Z".into()),
        ("-07:00", "+00:00".into()),
        ("Z0700", "Z".into()),
        ("-0700", "+0000".into()),
        ("2006", format!("{y:04}")),
        (".000000000", format!(".{nanos:09}")),
        (".000000", format!(".{:06}", nanos / 1000)),
        (".000", format!(".{:03}", nanos / 1_000_000)),
        (".999999999", frac(nanos, 9)),
        (".999999", frac(nanos / 1000, 6)),
        (".999", frac(nanos / 1_000_000, 3)),
        ("Jan", MONTHS[m as usize - 1][..3].into()),
        ("Mon", DAYS[wd][..3].into()),
        ("MST", "UTC".into()),
        ("002", format!("{yday:03}")),
        ("01", format!("{m:02}")),
        ("02", format!("{dd:02}")),
        ("_2", format!("{dd:>2}")),
        ("15", format!("{hh:02}")),
        ("03", format!("{h12:02}")),
        ("04", format!("{mi:02}")),
        ("05", format!("{ss:02}")),
        ("06", format!("{:02}", y % 100)),
        ("PM", if hh >= 12 { "PM" } else { "AM" }.into()),
        ("pm", if hh >= 12 { "pm" } else { "am" }.into()),
        ("1", m.to_string()),
        ("2", dd.to_string()),
        ("3", h12.to_string()),
        ("4", mi.to_string()),
        ("5", ss.to_string()),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (tok, val) in tokens {
            if let Some(r) = rest.strip_prefix(tok) {
                out.push_str(val);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn frac(v: u32, width: usize) -> String {
    let s = format!("{v:0width$}");
    let t = s.trim_end_matches('0');
    if t.is_empty() {
        String::new()
    } else {
        format!(".{t}")
    }
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_layouts() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            format(t, "2006-01-02T15:04:05Z07:00"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format(t, "Mon Jan _2 3:04PM 2006"),
            "Tue Nov 14 10:13PM 2023"
        );
    }
}
