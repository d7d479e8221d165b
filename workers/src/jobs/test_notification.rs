//! Runs `alerts.test_notification` (`berth_core::jobs::alerts::TestNotification`): one test
//! notice to one channel, through the same mailer and the same checked webhook client as real
//! notifications (`alerts::post_webhook`: address checked again at send time, no redirects, a
//! timeout), so a green test means real notices get through. Slack and Discord channels get the
//! smallest body their format accepts.

use async_trait::async_trait;
use berth_core::jobs::alerts::TestNotification;
use berth_core::store::alerts as store;
use chrono::Utc;

use crate::queue::{JobContext, RunJob};

const SUMMARY: &str = "Test notification from Berth";

#[async_trait]
impl RunJob for TestNotification {
    #[tracing::instrument(name = "alerts.test_notification", skip_all, fields(channel.id = %self.channel_id), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        // A channel deleted since has nobody to tell.
        let Some(channel) = store::channel_by_id(ctx.db(), self.channel_id).await? else { return Ok(()) };
        let base = env.config.server.public_url.as_str().trim_end_matches('/').to_owned();
        let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match channel.kind.as_str() {
            "email" => {
                let mail = berth_integrations::mail::alert(berth_integrations::mail::AlertNotice {
                    to: &channel.target,
                    resolved: false,
                    escalated: false,
                    severity: "test",
                    summary: SUMMARY,
                    site_name: "none (a test)",
                    metric: "none (a test)",
                    at: &at,
                    incident_url: &format!("{base}/admin/alerts/channels"),
                    fingerprint: "test",
                    message_id: format!("<alert-test-{}-{}@berth>", channel.id, ctx.job_id),
                })?;
                env.mailer.send(&mail).await?;
            }
            kind @ ("webhook" | "slack" | "discord") => {
                let body = match kind {
                    "slack" => serde_json::json!({ "text": SUMMARY }),
                    "discord" => serde_json::json!({ "content": SUMMARY }),
                    _ => serde_json::json!({
                        "fingerprint": "test",
                        "status": "test",
                        "summary": SUMMARY,
                        "channel_id": channel.id,
                        "requested_by": self.requested_by,
                        "sent_at": at,
                    }),
                };
                super::alerts::post_webhook(ctx, &channel, &body).await?;
            }
            other => anyhow::bail!("unknown channel kind `{other}`"),
        }
        tracing::info!(channel.kind = %channel.kind, "Test notification sent");
        Ok(())
    }
}
