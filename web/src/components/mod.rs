//! Building blocks shared by every page. Each is a function that returns a view, so a page
//! composes them like any other Leptos view.

pub mod badge;
pub mod chart;
pub mod confirm;
pub mod empty;
pub mod flash;
pub mod form;
pub mod qr;
pub mod site;
pub mod table;

use chrono::{DateTime, Utc};

/// Timestamps on pages: UTC, to the minute, the same format everywhere.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(at: &Option<DateTime<Utc>>) -> String {
    at.as_ref().map(when).unwrap_or_else(|| "never".to_owned())
}

/// How long something took, for people: "850 ms", "12.4 s", "3 min 5 s", "2 h 10 min".
pub fn duration(from: &DateTime<Utc>, to: &DateTime<Utc>) -> String {
    let ms = (*to - *from).num_milliseconds().max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// The duration of something that may not have started or finished: "—" before it starts,
/// "running for …" (up to `now`) while it runs.
pub fn duration_opt(from: Option<&DateTime<Utc>>, to: Option<&DateTime<Utc>>, now: &DateTime<Utc>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => duration(a, b),
        (Some(a), None) => format!("running for {}", duration(a, now)),
        _ => "—".to_owned(),
    }
}

/// A long text cut to `max` characters (on a character boundary), with "…" when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        assert_eq!(duration(&t0, &at(850)), "850 ms");
        assert_eq!(duration(&t0, &at(12_400)), "12.4 s");
        assert_eq!(duration(&t0, &at(185_000)), "3 min 5 s");
        assert_eq!(duration(&t0, &at(7_800_000)), "2 h 10 min");
        assert_eq!(duration(&at(5), &t0), "0 ms", "clock skew never shows a negative time");
        assert_eq!(duration_opt(None, None, &t0), "—");
        assert_eq!(duration_opt(Some(&t0), None, &at(2_000)), "running for 2.0 s");
    }

    #[test]
    fn clipping_respects_characters() {
        assert_eq!(clip("héllo wörld", 5), "héllo…");
        assert_eq!(clip("short", 10), "short");
    }
}
