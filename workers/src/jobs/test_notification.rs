//! Runs `alerts.test_notification` (`berth_core::jobs::alerts::TestNotification`): one test
//! notice to one channel, through the same mailer and the same checked webhook client as real
//! notifications (address checked again at send time, no redirects, a timeout), so a green test
//! means real notices get through.

use async_trait::async_trait;
use berth_core::jobs::alerts::TestNotification;
use berth_core::store::alerts as store;
use chrono::Utc;

use crate::queue::{JobContext, RunJob};

/// As for real webhooks: a slower answer is a failed delivery (retried).
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
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
            "webhook" => {
                let subnets = [env.config.runtime.site_subnets.into()];
                let target = berth_core::net::check_webhook_url(&channel.target, channel.allow_private, &subnets)
                    .await
                    .map_err(|e| anyhow::anyhow!("webhook target refused: {e}"))?;
                let body = serde_json::json!({
                    "fingerprint": "test",
                    "status": "test",
                    "summary": SUMMARY,
                    "channel_id": channel.id,
                    "requested_by": self.requested_by,
                    "sent_at": at,
                });
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(WEBHOOK_TIMEOUT)
                    .resolve_to_addrs(&target.host, &target.addrs)
                    .build()?;
                client.post(target.url).json(&body).send().await?.error_for_status()?;
            }
            other => anyhow::bail!("unknown channel kind `{other}`"),
        }
        tracing::info!(channel.kind = %channel.kind, "Test notification sent");
        Ok(())
    }
}
