//! The alert state machine, pure: given what an alert was, whether its metric breaches a
//! threshold now, and the rule's `for` duration, what it becomes and which transition (if any)
//! is worth a notification. The evaluation job (`workers/src/jobs/alerts.rs`) feeds it and
//! stores the result; docs/monitoring.md describes the behaviour.
//!
//! ```text
//!   ok ──breach──▶ pending ──breach for `for`──▶ firing ──clear for `hold`──▶ resolved
//!    ▲               │ clear                      │  ▲ breach again within the hold:
//!    └───────────────┘                            └──┘ still firing, nothing sent
//! ```
//! A rule with `for = 0` fires on the first breach. `fired` and `resolved` notify, once each;
//! a firing alert that reaches critical after firing as a warning notifies once more
//! (`escalated`), however often it moves between warning and critical afterwards. A firing
//! alert whose value moves otherwise, or that flaps inside the hold, pages nobody again.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The metrics a rule can watch. `backup`: a site's backups that failed (every attempt) since
/// its last good one; `backup_check`: 1 when the last integrity check of the site's customer's
/// repository failed, else 0 (docs/monitoring.md, docs/backups.md).
pub const METRICS: [&str; 8] = ["cpu", "memory", "down", "restarts", "certificate", "disk", "backup", "backup_check"];

/// Whether a lower value is the worse one (days until a certificate expires): the metric
/// breaches when it is at or *below* its thresholds, and critical is the lower threshold.
pub fn lower_is_worse(metric: &str) -> bool {
    metric == "certificate"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The severity `value` of `metric` reaches against the thresholds (inclusive), if any;
    /// see [`lower_is_worse`].
    pub fn of_metric(metric: &str, value: f64, warning: f64, critical: f64) -> Option<Self> {
        if lower_is_worse(metric) {
            Self::of(-value, -warning, -critical)
        } else {
            Self::of(value, warning, critical)
        }
    }

    /// The severity `value` reaches against the thresholds (inclusive), if any.
    pub fn of(value: f64, warning: f64, critical: f64) -> Option<Self> {
        if value >= critical {
            Some(Severity::Critical)
        } else if value >= warning {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Ok,
    Pending,
    Firing,
    Resolved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Phase::Ok),
            "pending" => Some(Phase::Pending),
            "firing" => Some(Phase::Firing),
            "resolved" => Some(Phase::Resolved),
            _ => None,
        }
    }
}

/// What the state machine remembers of one alert between evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub phase: Phase,
    pub severity: Option<Severity>,
    pub pending_since: Option<DateTime<Utc>>,
    /// While firing: since when the condition has been clear.
    pub clear_since: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// While firing: the severity the last notification told.
    pub notified: Option<Severity>,
}

impl Status {
    /// An alert never seen breaching.
    pub fn ok() -> Self {
        Self {
            phase: Phase::Ok,
            severity: None,
            pending_since: None,
            clear_since: None,
            fired_at: None,
            resolved_at: None,
            notified: None,
        }
    }
}

/// A change worth telling people about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Fired(Severity),
    /// A firing warning reached critical (once per firing).
    Escalated,
    Resolved,
}

impl Transition {
    /// The word notifications and the timeline use.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Fired(_) => "fired",
            Transition::Escalated => "escalated",
            Transition::Resolved => "resolved",
        }
    }
}

/// The timing of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a breach must last before the alert fires.
    pub for_duration: Duration,
    /// How long a firing alert's condition must stay clear before it resolves.
    pub hold: Duration,
}

/// One evaluation: `breach` is the severity the metric reaches now (`None`: within limits, or
/// no data).
pub fn step(
    prev: &Status,
    breach: Option<Severity>,
    now: DateTime<Utc>,
    timing: Timing,
) -> (Status, Option<Transition>) {
    let mut next = prev.clone();
    match (prev.phase, breach) {
        (Phase::Ok | Phase::Resolved, Some(severity)) => {
            next.pending_since = Some(now);
            next.severity = Some(severity);
            next.clear_since = None;
            if timing.for_duration <= Duration::zero() {
                return fire(next, severity, now);
            }
            next.phase = Phase::Pending;
            (next, None)
        }
        (Phase::Pending, Some(severity)) => {
            next.severity = Some(severity);
            let since = prev.pending_since.unwrap_or(now);
            if now - since >= timing.for_duration {
                return fire(next, severity, now);
            }
            (next, None)
        }
        (Phase::Pending, None) => {
            (Status { resolved_at: prev.resolved_at, fired_at: prev.fired_at, ..Status::ok() }, None)
        }
        (Phase::Firing, Some(severity)) => {
            next.severity = Some(severity);
            next.clear_since = None;
            match prev.notified {
                Some(Severity::Warning) if severity == Severity::Critical => {
                    next.notified = Some(Severity::Critical);
                    (next, Some(Transition::Escalated))
                }
                // An alert stored before escalations were remembered: what it says now is
                // what was told.
                None => {
                    next.notified = Some(severity);
                    (next, None)
                }
                _ => (next, None),
            }
        }
        (Phase::Firing, None) => {
            let since = *next.clear_since.get_or_insert(now);
            if now - since >= timing.hold {
                next.phase = Phase::Resolved;
                next.resolved_at = Some(now);
                next.severity = None;
                next.pending_since = None;
                next.clear_since = None;
                next.notified = None;
                return (next, Some(Transition::Resolved));
            }
            (next, None)
        }
        (Phase::Ok | Phase::Resolved, None) => (next, None),
    }
}

fn fire(mut next: Status, severity: Severity, now: DateTime<Utc>) -> (Status, Option<Transition>) {
    next.phase = Phase::Firing;
    next.notified = Some(severity);
    next.fired_at = Some(now);
    next.resolved_at = None;
    next.clear_since = None;
    (next, Some(Transition::Fired(severity)))
}

/// The stable identity of a site's metric in notifications: the same for every firing of it,
/// so a receiver can group and de-duplicate.
pub fn fingerprint(site_id: Uuid, metric: &str) -> String {
    let digest = Sha256::digest(format!("berth:{site_id}:{metric}").as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    const TIMING: Timing = Timing { for_duration: Duration::seconds(60), hold: Duration::seconds(30) };

    /// Runs `inputs` (second, breach) through the machine from ok, returning the transitions.
    fn run(inputs: &[(i64, Option<Severity>)], timing: Timing) -> (Status, Vec<(i64, Transition)>) {
        let mut status = Status::ok();
        let mut transitions = Vec::new();
        for (second, breach) in inputs {
            let (next, t) = step(&status, *breach, at(*second), timing);
            if let Some(t) = t {
                transitions.push((*second, t));
            }
            status = next;
        }
        (status, transitions)
    }

    const W: Option<Severity> = Some(Severity::Warning);
    const C: Option<Severity> = Some(Severity::Critical);

    #[test]
    fn a_breach_fires_only_after_its_for_duration_and_resolves_after_the_hold() {
        let (status, t) = run(&[(0, W), (30, W), (59, W), (60, W), (75, None), (100, None), (105, None)], TIMING);
        assert_eq!(t, vec![(60, Transition::Fired(Severity::Warning)), (105, Transition::Resolved)]);
        assert_eq!(status.phase, Phase::Resolved);
        assert_eq!(status.fired_at, Some(at(60)));
        assert_eq!(status.resolved_at, Some(at(105)));
    }

    #[test]
    fn a_breach_shorter_than_for_never_fires() {
        let (status, t) = run(&[(0, C), (30, C), (45, None), (50, W), (100, W)], TIMING);
        assert!(t.is_empty(), "{t:?}");
        // The clear reset the pending timer: the second breach started at 50.
        assert_eq!(status.phase, Phase::Pending);
        assert_eq!(status.pending_since, Some(at(50)));
    }

    #[test]
    fn firing_does_not_repeat_and_flapping_inside_the_hold_pages_nobody() {
        let inputs = [(0, W), (60, W), (75, C), (90, W), (100, None), (110, W), (120, None), (140, C), (150, None)];
        let (status, t) = run(&inputs, TIMING);
        // One escalation to critical, however often it moves between warning and critical.
        assert_eq!(t, vec![(60, Transition::Fired(Severity::Warning)), (75, Transition::Escalated)]);
        assert_eq!(status.phase, Phase::Firing);
        assert_eq!(status.clear_since, Some(at(150)));
        // Clear long enough: one resolved, then nothing more while it stays clear.
        let (next, t) = step(&status, None, at(180), TIMING);
        assert_eq!(t, Some(Transition::Resolved));
        let (again, t) = step(&next, None, at(240), TIMING);
        assert_eq!(t, None);
        assert_eq!(again, next);
    }

    #[test]
    fn zero_for_fires_on_the_first_breach_and_a_resolved_alert_can_fire_again() {
        let timing = Timing { for_duration: Duration::zero(), hold: Duration::zero() };
        let (_, t) = run(&[(0, C), (1, C), (2, None), (3, None), (4, W)], timing);
        assert_eq!(
            t,
            vec![
                (0, Transition::Fired(Severity::Critical)),
                (2, Transition::Resolved),
                (4, Transition::Fired(Severity::Warning))
            ]
        );
    }

    #[test]
    fn a_critical_firing_never_escalates_and_a_new_firing_may_escalate_again() {
        let timing = Timing { for_duration: Duration::zero(), hold: Duration::zero() };
        let (_, t) = run(&[(0, C), (1, W), (2, C), (3, None), (4, W), (5, C), (6, W), (7, C)], timing);
        assert_eq!(
            t,
            vec![
                (0, Transition::Fired(Severity::Critical)),
                (3, Transition::Resolved),
                (4, Transition::Fired(Severity::Warning)),
                (5, Transition::Escalated)
            ]
        );
        // An alert stored before escalations were remembered does not escalate on its next step.
        let legacy = Status {
            phase: Phase::Firing,
            severity: W,
            pending_since: Some(at(0)),
            clear_since: None,
            fired_at: Some(at(0)),
            resolved_at: None,
            notified: None,
        };
        let (next, t) = step(&legacy, C, at(1), timing);
        assert_eq!((t, next.notified), (None, C));
    }

    #[test]
    fn days_left_breach_at_or_below_their_thresholds() {
        assert_eq!(Severity::of_metric("certificate", 30.0, 14.0, 3.0), None);
        assert_eq!(Severity::of_metric("certificate", 14.0, 14.0, 3.0), W);
        assert_eq!(Severity::of_metric("certificate", 2.5, 14.0, 3.0), C);
        assert_eq!(Severity::of_metric("disk", 85.0, 80.0, 90.0), W);
    }

    #[test]
    fn thresholds_are_inclusive_and_fingerprints_stable() {
        assert_eq!(Severity::of(69.9, 70.0, 90.0), None);
        assert_eq!(Severity::of(70.0, 70.0, 90.0), W);
        assert_eq!(Severity::of(95.0, 70.0, 90.0), C);
        let site = Uuid::nil();
        assert_eq!(fingerprint(site, "down"), fingerprint(site, "down"));
        assert_ne!(fingerprint(site, "down"), fingerprint(site, "cpu"));
        assert_eq!(fingerprint(site, "down").len(), 32);
    }
}
