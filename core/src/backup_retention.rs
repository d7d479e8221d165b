//! GFS (grandfather-father-son) retention of backups, as pure logic: given the backups of one
//! site (or of the platform), a [`Policy`] and "now", which to keep and which to delete.
//!
//! The rules, in the words of issue 11:
//!
//! - **The newest good backup of each period is that period's copy.** Periods are UTC hours,
//!   days, ISO weeks (Monday to Sunday), calendar months and calendar years. A policy keeps the
//!   copies of the newest `keep_hourly` hours, `keep_daily` days, … *that have a good backup*
//!   (as restic's `forget --keep-*` counts them): a week whose Sunday failed keeps its Saturday,
//!   and a month of outage does not age every copy out.
//! - **Failed backups never count as a period's copy.** They are deleted, except those newer
//!   than the newest good backup: they are the record of a failure still going on.
//! - **The newest good backup is never deleted**, whatever the policy says (even all zeros).
//! - **Running backups and backups dated after `now`** (a clock that jumped) are never deleted:
//!   nothing is known about them yet.
//!
//! A backup kept by several rules is kept once, with every reason (shown to operators as
//! "daily, monthly").

use chrono::{DateTime, Datelike, Timelike, Utc};

/// How many period copies to keep, per kind of period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Policy {
    /// Berth's defaults: a day of hourly copies, 7 daily, 4 weekly, 12 monthly, 10 yearly.
    pub const DEFAULT: Policy =
        Policy { keep_hourly: 24, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 10 };

    fn rules(&self) -> [(Period, u32); 5] {
        [
            (Period::Hourly, self.keep_hourly),
            (Period::Daily, self.keep_daily),
            (Period::Weekly, self.keep_weekly),
            (Period::Monthly, self.keep_monthly),
            (Period::Yearly, self.keep_yearly),
        ]
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What is known of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Completed (and, where verification ran, verified): it can restore.
    Good,
    /// Failed or unverifiable: it never counts as a copy.
    Failed,
    /// Still running.
    Running,
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup<Id> {
    pub id: Id,
    /// When the backup was taken.
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// The newest good backup, kept whatever the policy says.
    LastGood,
    /// A failure newer than the newest good backup.
    RecentFailure,
    /// Still running, or dated after now.
    NotFinished,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
            Self::LastGood => "last good",
            Self::RecentFailure => "recent failure",
            Self::NotFinished => "not finished",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    /// The period `at` falls in, as a comparable key.
    fn key(self, at: DateTime<Utc>) -> (i32, u32, u32, u32) {
        match self {
            Self::Hourly => (at.year(), at.month(), at.day(), at.hour()),
            Self::Daily => (at.year(), at.month(), at.day(), 0),
            Self::Weekly => {
                let week = at.iso_week();
                (week.year(), week.week(), 0, 0)
            }
            Self::Monthly => (at.year(), at.month(), 0, 0),
            Self::Yearly => (at.year(), 0, 0, 0),
        }
    }

    fn reason(self) -> Reason {
        match self {
            Self::Hourly => Reason::Hourly,
            Self::Daily => Reason::Daily,
            Self::Weekly => Reason::Weekly,
            Self::Monthly => Reason::Monthly,
            Self::Yearly => Reason::Yearly,
        }
    }
}

/// The decision: every backup is in exactly one of the two lists, each newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<Id> {
    pub keep: Vec<(Id, Vec<Reason>)>,
    pub delete: Vec<Id>,
}

/// Applies `policy` to `backups` (in any order) at `now`.
pub fn decide<Id: Clone>(policy: &Policy, backups: &[Backup<Id>], now: DateTime<Utc>) -> Decision<Id> {
    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Newest first; equal times keep their input order, so the decision is deterministic.
    order.sort_by_key(|&i| std::cmp::Reverse(backups[i].at));

    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); backups.len()];
    let newest_good = order.iter().copied().find(|&i| backups[i].outcome == Outcome::Good && backups[i].at <= now);

    for (period, count) in policy.rules() {
        let mut left = count;
        let mut last = None;
        for &i in &order {
            if left == 0 {
                break;
            }
            let b = &backups[i];
            if b.outcome != Outcome::Good || b.at > now {
                continue;
            }
            let key = period.key(b.at);
            if last != Some(key) {
                last = Some(key);
                left -= 1;
                reasons[i].push(period.reason());
            }
        }
    }
    if let Some(i) = newest_good {
        reasons[i].push(Reason::LastGood);
    }
    for (i, b) in backups.iter().enumerate() {
        if b.outcome == Outcome::Running || b.at > now {
            reasons[i].push(Reason::NotFinished);
        } else if b.outcome == Outcome::Failed && newest_good.is_none_or(|g| b.at > backups[g].at) {
            reasons[i].push(Reason::RecentFailure);
        }
    }

    let mut decision = Decision { keep: Vec::new(), delete: Vec::new() };
    for i in order {
        let id = backups[i].id.clone();
        if reasons[i].is_empty() {
            decision.delete.push(id);
        } else {
            let mut why = std::mem::take(&mut reasons[i]);
            why.sort();
            decision.keep.push((id, why));
        }
    }
    decision
}

/// One backup of a site as the prune job sees it: a GFS copy, or a pre-restore snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteBackup<Id> {
    pub backup: Backup<Id>,
    /// Taken of the current data before a restore replaced it (`pre_restore`): not a period
    /// copy, kept by its own rule (see [`prune_site`]).
    pub pre_restore: bool,
}

/// Which of one site's backups to remove, newest first:
///
/// - the scheduled and manual backups by [`decide`] with `policy`;
/// - pre-restore backups by their own rule: they are the undo of a restore, kept as long as the
///   volume the restore replaced (`keep_pre_restore`), never counted as a period's copy, then
///   removed (a failed one too);
/// - whatever the rules say, never the newest good backup of the site of any kind, nor one that
///   is still running or dated after `now`.
pub fn prune_site<Id: Clone + PartialEq>(
    policy: &Policy,
    backups: &[SiteBackup<Id>],
    keep_pre_restore: chrono::Duration,
    now: DateTime<Utc>,
) -> Vec<Id> {
    let periodic: Vec<Backup<Id>> = backups.iter().filter(|b| !b.pre_restore).map(|b| b.backup.clone()).collect();
    let mut drop = decide(policy, &periodic, now).delete;
    let mut aged: Vec<&Backup<Id>> = backups
        .iter()
        .filter(|b| b.pre_restore && b.backup.outcome != Outcome::Running && b.backup.at + keep_pre_restore < now)
        .map(|b| &b.backup)
        .collect();
    aged.sort_by_key(|b| std::cmp::Reverse(b.at));
    drop.extend(aged.into_iter().map(|b| b.id.clone()));
    let newest_good = backups
        .iter()
        .filter(|b| b.backup.outcome == Outcome::Good && b.backup.at <= now)
        .max_by_key(|b| b.backup.at)
        .map(|b| b.backup.id.clone());
    drop.retain(|id| Some(id) != newest_good.as_ref());
    drop
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate, TimeZone};

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid time")
    }

    fn good(t: DateTime<Utc>) -> Backup<DateTime<Utc>> {
        Backup { id: t, at: t, outcome: Outcome::Good }
    }

    fn failed(t: DateTime<Utc>) -> Backup<DateTime<Utc>> {
        Backup { id: t, at: t, outcome: Outcome::Failed }
    }

    fn kept(d: &Decision<DateTime<Utc>>) -> Vec<String> {
        d.keep.iter().map(|(t, _)| t.format("%Y-%m-%d %H:%M").to_string()).collect()
    }

    fn reasons_of(d: &Decision<DateTime<Utc>>, t: DateTime<Utc>) -> Vec<Reason> {
        d.keep.iter().find(|(id, _)| *id == t).map(|(_, r)| r.clone()).unwrap_or_default()
    }

    /// 400 days of daily backups at 03:30 (2027-01-31 … 2028-03-05, across a year change and
    /// the leap day 2028-02-29), plus hourly ones at :00 for the last 30 hours, with failures
    /// on a Sunday, a leap day, two month ends, a year end, a Friday and two hours.
    fn calendar() -> (Vec<Backup<DateTime<Utc>>>, DateTime<Utc>) {
        let failed_days = [
            NaiveDate::from_ymd_opt(2027, 11, 30), // a month's last day (Tuesday)
            NaiveDate::from_ymd_opt(2027, 12, 31), // the year's last day (Friday)
            NaiveDate::from_ymd_opt(2028, 1, 31),  // a month's last day (Monday)
            NaiveDate::from_ymd_opt(2028, 2, 27),  // a Sunday: the last day of ISO week 8
            NaiveDate::from_ymd_opt(2028, 2, 29),  // the leap day, February's last
            NaiveDate::from_ymd_opt(2028, 3, 3),   // a Friday inside the daily window
        ];
        let failed_days: Vec<NaiveDate> = failed_days.into_iter().map(|d| d.expect("date")).collect();
        let mut backups = Vec::new();
        let mut day = NaiveDate::from_ymd_opt(2027, 1, 31).expect("date");
        let last = NaiveDate::from_ymd_opt(2028, 3, 5).expect("date");
        let mut days = 0;
        while day <= last {
            let t = Utc.from_utc_datetime(&day.and_hms_opt(3, 30, 0).expect("time"));
            backups.push(if failed_days.contains(&day) { failed(t) } else { good(t) });
            day = day.succ_opt().expect("next day");
            days += 1;
        }
        assert_eq!(days, 400);
        // Hourly: 2028-03-04 00:00 … 2028-03-05 05:00 (30 backups); 02:00 and 04:00 on the 5th failed.
        let first_hour = at(2028, 3, 4, 0, 0);
        for h in 0..30 {
            let t = first_hour + Duration::hours(h);
            let failed_hour = t == at(2028, 3, 5, 2, 0) || t == at(2028, 3, 5, 4, 0);
            backups.push(if failed_hour { failed(t) } else { good(t) });
        }
        (backups, at(2028, 3, 5, 5, 40))
    }

    #[test]
    fn a_400_day_calendar_keeps_exactly_the_expected_set() {
        let (backups, now) = calendar();
        let d = decide(&Policy::DEFAULT, &backups, now);

        // Worked out by hand from the calendar above (newest first):
        // hourly (24 hours with a good backup, the newest of each): 5th 05:00, 03:30 (newer
        //   than 03:00 in hour 03), 01:00, 00:00 (02 and 04 failed), then 4th 23:00 … 04:00 (20);
        // daily (7 days): 5th 05:00, 4th 23:00, 2nd 03:30 (3rd failed), 1st, Feb 29 failed so
        //   Feb 28, 27 failed so Feb 26, Feb 25;
        // weekly (ISO weeks): week 9 = 5th 05:00; week 8 = Sat Feb 26 (Sunday failed); week 7 =
        //   Feb 20; week 6 = Feb 13;
        // monthly: Mar = 5th 05:00; Feb = Feb 28 (leap day failed); Jan = Jan 30 (31st failed);
        //   Dec = Dec 30 (31st failed); Nov = Nov 29 (30th failed); Oct 31 … Apr 30 (7 more);
        // yearly: 2028 = 5th 05:00; 2027 = Dec 30; 2027 is the first year, so 2 of 10.
        let mut expected: Vec<String> = vec!["2028-03-05 05:00".into(), "2028-03-05 03:30".into()];
        expected.push("2028-03-05 01:00".into());
        expected.push("2028-03-05 00:00".into());
        for h in (4..=23).rev() {
            expected.push(format!("2028-03-04 {h:02}:00"));
        }
        for day in [
            "2028-03-02",
            "2028-03-01",
            "2028-02-28",
            "2028-02-26",
            "2028-02-25",
            "2028-02-20",
            "2028-02-13",
            "2028-01-30",
            "2027-12-30",
            "2027-11-29",
            "2027-10-31",
            "2027-09-30",
            "2027-08-31",
            "2027-07-31",
            "2027-06-30",
            "2027-05-31",
            "2027-04-30",
        ] {
            expected.push(format!("{day} 03:30"));
        }
        assert_eq!(kept(&d), expected);
        assert_eq!(d.keep.len() + d.delete.len(), backups.len(), "every backup is decided once");

        // The reasons say which rule kept what.
        assert_eq!(
            reasons_of(&d, at(2028, 3, 5, 5, 0)),
            [Reason::Hourly, Reason::Daily, Reason::Weekly, Reason::Monthly, Reason::Yearly, Reason::LastGood]
        );
        assert_eq!(reasons_of(&d, at(2028, 2, 26, 3, 30)), [Reason::Daily, Reason::Weekly]);
        assert_eq!(reasons_of(&d, at(2027, 12, 30, 3, 30)), [Reason::Monthly, Reason::Yearly]);
        // The 4th's daily at 03:30 shares hour 03 with the hourly at 03:00 and the day with
        // 23:00: both newer, so it goes.
        assert!(d.delete.contains(&at(2028, 3, 4, 3, 30)));
        // Every failure is older than the newest good backup: all deleted.
        for b in backups.iter().filter(|b| b.outcome == Outcome::Failed) {
            assert!(d.delete.contains(&b.id), "failed {} kept", b.at);
        }
    }

    #[test]
    fn the_last_good_backup_survives_when_everything_since_failed() {
        let only_good = at(2027, 3, 1, 3, 30);
        let mut backups = vec![good(only_good)];
        for n in 1..=300 {
            backups.push(failed(only_good + Duration::days(n)));
        }
        let now = only_good + Duration::days(301);
        let d = decide(&Policy::DEFAULT, &backups, now);
        assert_eq!(
            reasons_of(&d, only_good),
            [Reason::Hourly, Reason::Daily, Reason::Weekly, Reason::Monthly, Reason::Yearly, Reason::LastGood]
        );
        // Failures newer than the last good backup stay as the record of the outage.
        assert_eq!(d.keep.len(), backups.len());

        // A policy that keeps nothing still keeps the newest good backup, and nothing else.
        let none = Policy { keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 };
        let backups = vec![good(at(2027, 3, 1, 0, 0)), good(at(2027, 3, 2, 0, 0)), failed(at(2027, 3, 1, 12, 0))];
        let d = decide(&none, &backups, at(2027, 3, 3, 0, 0));
        assert_eq!(kept(&d), ["2027-03-02 00:00"]);
        assert_eq!(reasons_of(&d, at(2027, 3, 2, 0, 0)), [Reason::LastGood]);
        assert_eq!(d.delete, [at(2027, 3, 1, 12, 0), at(2027, 3, 1, 0, 0)]);
    }

    #[test]
    fn nothing_good_means_nothing_is_deleted_but_old_news() {
        let backups = vec![failed(at(2027, 3, 1, 0, 0)), failed(at(2027, 3, 2, 0, 0))];
        let d = decide(&Policy::DEFAULT, &backups, at(2027, 3, 3, 0, 0));
        assert!(d.delete.is_empty(), "with no good backup every failure is the current outage");
    }

    #[test]
    fn running_and_future_backups_are_never_deleted() {
        let now = at(2027, 6, 1, 12, 0);
        let backups = vec![
            good(at(2027, 6, 1, 11, 0)),
            Backup { id: at(2027, 5, 1, 0, 0), at: at(2027, 5, 1, 0, 0), outcome: Outcome::Running },
            good(at(2027, 6, 2, 0, 0)), // after now: a clock that jumped
        ];
        let none = Policy { keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 };
        let d = decide(&none, &backups, now);
        assert!(d.delete.is_empty());
        assert_eq!(reasons_of(&d, at(2027, 6, 1, 11, 0)), [Reason::LastGood], "the future one is not the last good");
        assert_eq!(reasons_of(&d, at(2027, 6, 2, 0, 0)), [Reason::NotFinished]);
    }

    fn keep_one(period: &str) -> Policy {
        let mut p = Policy { keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 };
        match period {
            "daily" => p.keep_daily = 2,
            "weekly" => p.keep_weekly = 2,
            "monthly" => p.keep_monthly = 2,
            _ => p.keep_yearly = 2,
        }
        p
    }

    /// `before` and `start` (a minute apart) fall in two periods, so a rule keeping two periods
    /// keeps both; `later` shares `start`'s period, so with all three `start` goes (it is
    /// neither its period's newest nor the last good backup).
    fn assert_boundary(period: &str, before: DateTime<Utc>, start: DateTime<Utc>, later: DateTime<Utc>) {
        let now = later + Duration::days(1);
        let d = decide(&keep_one(period), &[good(before), good(start)], now);
        assert!(d.delete.is_empty(), "{period}: {before} and {start} are in different periods");
        let d = decide(&keep_one(period), &[good(before), good(start), good(later)], now);
        assert_eq!(d.delete, [start], "{period}: {start} and {later} share a period");
    }

    #[test]
    fn period_boundaries() {
        // ISO weeks start on Monday: Sunday 23:59 and Monday 00:00 are two weeks, Monday and
        // the next Sunday one.
        assert_boundary("weekly", at(2028, 2, 27, 23, 59), at(2028, 2, 28, 0, 0), at(2028, 3, 5, 23, 59));
        // A week across a year change: Friday 2027-12-31 and Sunday 2028-01-02 are ISO week 52
        // of 2027; Monday 2028-01-03 starts week 1 of 2028.
        assert_boundary("weekly", at(2027, 12, 26, 23, 59), at(2027, 12, 31, 12, 0), at(2028, 1, 2, 12, 0));
        assert_boundary("weekly", at(2028, 1, 2, 23, 59), at(2028, 1, 3, 0, 0), at(2028, 1, 9, 23, 0));
        // Days: the leap day is a day of its own.
        assert_boundary("daily", at(2028, 2, 28, 23, 59), at(2028, 2, 29, 0, 0), at(2028, 2, 29, 23, 59));
        assert_boundary("daily", at(2028, 2, 29, 23, 59), at(2028, 3, 1, 0, 0), at(2028, 3, 1, 12, 0));
        // Months end on the 30th, 31st, 28th and 29th.
        assert_boundary("monthly", at(2027, 4, 30, 23, 59), at(2027, 5, 1, 0, 0), at(2027, 5, 31, 23, 59));
        assert_boundary("monthly", at(2027, 1, 31, 23, 59), at(2027, 2, 1, 0, 0), at(2027, 2, 28, 23, 59));
        assert_boundary("monthly", at(2027, 2, 28, 23, 59), at(2027, 3, 1, 0, 0), at(2027, 3, 31, 0, 0));
        assert_boundary("monthly", at(2028, 2, 29, 23, 59), at(2028, 3, 1, 0, 0), at(2028, 3, 2, 0, 0));
        // Years.
        assert_boundary("yearly", at(2027, 12, 31, 23, 59), at(2028, 1, 1, 0, 0), at(2028, 12, 31, 23, 59));
    }

    #[test]
    fn pre_restore_backups_keep_their_own_time_and_the_newest_good_of_any_kind_stays() {
        let now = at(2027, 6, 20, 12, 0);
        let row = |t: DateTime<Utc>, outcome: Outcome, pre_restore: bool| SiteBackup {
            backup: Backup { id: t, at: t, outcome },
            pre_restore,
        };
        let none = Policy { keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 };
        let daily = Policy { keep_daily: 2, ..none };
        let backups = vec![
            row(at(2027, 6, 19, 3, 30), Outcome::Good, false),
            row(at(2027, 6, 18, 3, 30), Outcome::Good, false),
            row(at(2027, 6, 17, 3, 30), Outcome::Good, false),
            row(at(2027, 6, 18, 9, 0), Outcome::Good, true), // 2 days old: kept
            row(at(2027, 6, 1, 9, 0), Outcome::Good, true),  // 19 days old: removed
            row(at(2027, 6, 2, 9, 0), Outcome::Failed, true), // removed too
            row(at(2027, 5, 1, 9, 0), Outcome::Running, true),
        ];
        let drop = prune_site(&daily, &backups, chrono::Duration::days(7), now);
        assert_eq!(drop, [at(2027, 6, 17, 3, 30), at(2027, 6, 2, 9, 0), at(2027, 6, 1, 9, 0)]);

        // A pre-restore backup that is the newest good one stays, however old.
        let backups = vec![
            row(at(2027, 6, 1, 3, 30), Outcome::Good, false),
            row(at(2027, 6, 2, 3, 30), Outcome::Failed, false),
            row(at(2027, 6, 5, 9, 0), Outcome::Good, true),
        ];
        let drop = prune_site(&none, &backups, chrono::Duration::days(7), now);
        // decide keeps the 1st (its newest good) and the failure after it; the pre-restore
        // backup, older than 7 days, is the site's newest good copy: nothing goes but the rule's.
        assert_eq!(drop, Vec::<DateTime<Utc>>::new());
    }
}
