//! Cron expressions: the one parser behind the scheduler (`job_schedules.cron`) and the backup
//! schedules people type into plans and sites, so what the edge accepts is what fires.
//!
//! Two spellings, told apart by the number of fields:
//!
//! - **five fields**, standard cron as people write it: `minute hour day-of-month month
//!   day-of-week`, day-of-week `0`–`7` with `0` and `7` both Sunday (`0 * * * *`: every hour;
//!   `30 3 * * 1-5`: 03:30 on weekdays). Backup schedules take only this form.
//! - **six or seven fields**, the `cron` crate's own: a leading seconds field and an optional
//!   trailing year, day-of-week `1`–`7` from Sunday. The built-in schedules use it.
//!
//! Every time is UTC.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
pub use cron::Schedule;

/// Parses a five-field (standard) or six/seven-field (`cron` crate) expression.
pub fn parse(expr: &str) -> Result<Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let text = match fields.len() {
        5 => {
            let dow = standard_weekdays(fields[4])?;
            format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3])
        }
        6 | 7 => fields.join(" "),
        n => return Err(format!("has {n} fields; write five: minute hour day-of-month month day-of-week")),
    };
    Schedule::from_str(&text).map_err(|e| format!("is not a valid cron expression ({e})"))
}

/// The latest tick of `schedule` at or before `now` (whole seconds).
pub fn latest_tick(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let now = now.trunc_subsecs(0);
    if schedule.includes(now) {
        return Some(now);
    }
    schedule.after(&now).next_back()
}

/// A backup schedule: five fields, valid, firing at all, and at most once a minute (which the
/// five-field form guarantees). Returns the expression normalised to single spaces.
pub fn validate_backup_cron(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "has {} fields; write five: minute hour day-of-month month day-of-week, e.g. `0 * * * *`",
            fields.len()
        ));
    }
    let schedule = parse(expr)?;
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err("never fires".into());
    }
    Ok(fields.join(" "))
}

/// Standard day-of-week numbers (0–7, Sunday = 0 and 7) to the names the `cron` crate reads
/// unambiguously; names (in capitals), `*` and `?` pass through.
fn standard_weekdays(field: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let name = |part: &str| -> Result<String, String> {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            let n: usize = part.parse().map_err(|_| format!("day of week `{part}` is not 0-7"))?;
            NAMES.get(n).map(|s| (*s).to_owned()).ok_or_else(|| format!("day of week `{part}` is not 0-7"))
        } else {
            Ok(part.to_ascii_uppercase())
        }
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
            None => name(range)?,
        };
        out.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid time")
    }

    fn next_after(expr: &str, t: DateTime<Utc>) -> DateTime<Utc> {
        parse(expr).expect("parses").after(&t).next().expect("fires")
    }

    #[test]
    fn five_fields_are_standard_cron() {
        let noon = at(2026, 12, 2, 12, 10); // a Wednesday
        assert_eq!(next_after("0 * * * *", noon), at(2026, 12, 2, 13, 0));
        assert_eq!(next_after("30 3 * * *", noon), at(2026, 12, 3, 3, 30));
        // Day-of-week 0 and 7 are Sunday, 1-5 Monday to Friday, as in crontab(5).
        assert_eq!(next_after("0 4 * * 0", noon), at(2026, 12, 6, 4, 0));
        assert_eq!(next_after("0 4 * * 7", noon), at(2026, 12, 6, 4, 0));
        assert_eq!(next_after("0 4 * * 6", noon), at(2026, 12, 5, 4, 0));
        assert_eq!(next_after("0 4 * * 1-5", noon), at(2026, 12, 3, 4, 0));
        assert_eq!(next_after("0 4 * * 0,3", noon), at(2026, 12, 6, 4, 0));
        assert_eq!(next_after("0 4 * * sun", noon), at(2026, 12, 6, 4, 0));
        // Six fields are the cron crate's own (seconds first), as the built-in schedules use.
        assert_eq!(next_after("0 */10 * * * *", noon), at(2026, 12, 2, 12, 20));
    }

    #[test]
    fn backup_schedules_must_be_five_valid_fields() {
        assert_eq!(validate_backup_cron("  0  *  * * * "), Ok("0 * * * *".into()));
        assert!(validate_backup_cron("0 */10 * * * *").expect_err("six").contains("has 6 fields"));
        assert!(validate_backup_cron("hourly").expect_err("one").contains("has 1 fields"));
        assert!(validate_backup_cron("61 * * * *").expect_err("range").contains("not a valid cron"));
        assert!(validate_backup_cron("0 * * * 8").expect_err("weekday").contains("not 0-7"));
        assert!(validate_backup_cron("0 0 31 2 *").expect_err("never").contains("never fires"));
    }
}
