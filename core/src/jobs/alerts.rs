//! Alerting jobs: the evaluation every `BERTH_ALERTS_INTERVAL_SECONDS`, one notification per
//! channel and transition, and the optional restart of a site that stopped answering.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Job;

/// Evaluates every enabled rule against the latest samples and uptime checks, moves each
/// alert through its state machine (`crate::alerting`), opens and resolves incidents and
/// enqueues their notifications in the same transaction.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateAlerts {}

impl Job for EvaluateAlerts {
    const NAME: &'static str = "alerts.evaluate";
    const QUEUE: &'static str = "short";
    /// A missed evaluation is not retried: the next one is seconds away.
    const MAX_ATTEMPTS: i32 = 1;

    fn dedup_key(&self) -> Option<String> {
        Some(Self::NAME.into())
    }
}

/// Tells one channel that an incident fired or resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyAlert {
    pub incident_id: Uuid,
    pub channel_id: Uuid,
    /// `fired`, `escalated` or `resolved`.
    pub transition: String,
}

impl Job for NotifyAlert {
    const NAME: &'static str = "alerts.notify";
    const MAX_ATTEMPTS: i32 = 8;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("alerts.notify:{}:{}:{}", self.incident_id, self.channel_id, self.transition))
    }
}

/// Tells one channel that many sites fired (or resolved) in the same evaluation round, in
/// one message instead of one per site (each site still has its own incident).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyAlertGroup {
    pub channel_id: Uuid,
    /// `fired` or `resolved`.
    pub transition: String,
    pub incident_ids: Vec<Uuid>,
}

impl Job for NotifyAlertGroup {
    const NAME: &'static str = "alerts.notify_group";
    const MAX_ATTEMPTS: i32 = 8;

    fn dedup_key(&self) -> Option<String> {
        let first = self.incident_ids.iter().min().map(Uuid::to_string).unwrap_or_default();
        Some(format!("alerts.notify_group:{first}:{}:{}", self.channel_id, self.transition))
    }
}

/// Restarts a site whose down alert fires after too many failed uptime checks, once per
/// incident; the key allows one in flight per site.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediateSite {
    pub incident_id: Uuid,
    pub site_id: Uuid,
    pub failed_checks: i64,
}

impl Job for RemediateSite {
    const NAME: &'static str = "alerts.remediate";
    const MAX_ATTEMPTS: i32 = 2;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("alerts.remediate:{}", self.site_id))
    }
}

/// Sends a test notice to one channel ("Send test" in the console, or
/// `POST /api/v1/notification-channels/{id}/test`), through the mailer or the checked webhook
/// client that real notifications use. Not tied to an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestNotification {
    pub channel_id: Uuid,
    /// Who asked for it, named in the notice.
    pub requested_by: String,
}

impl Job for TestNotification {
    const NAME: &'static str = "alerts.test_notification";
    const MAX_ATTEMPTS: i32 = 3;

    /// One test in flight per channel: pressing the button twice sends one.
    fn dedup_key(&self) -> Option<String> {
        Some(format!("alerts.test_notification:{}", self.channel_id))
    }
}
