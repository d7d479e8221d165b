//! Runs the alerting jobs defined in `berth_core::jobs::alerts`: the evaluation (readings →
//! state machine → stored alerts, incidents and queued notifications), the notifications
//! themselves (e-mail through the mailer, webhooks as JSON to checked addresses) and the
//! optional restart of a site that stopped answering.

use std::collections::HashMap;

use async_trait::async_trait;
use berth_core::access::Caller;
use berth_core::alerting::{self, Phase, Severity, Status, Timing, Transition};
use berth_core::entities::{alert_rules, alerts, customers, incidents, notification_channels, sites};
use berth_core::jobs::alerts::{EvaluateAlerts, NotifyAlert, RemediateSite};
use berth_core::store::alerts::{self as store, Evaluated, Reading};
use chrono::{Duration, Utc};
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::queue::{JobContext, RunJob};

/// A webhook that takes longer is a failed delivery (retried).
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[async_trait]
impl RunJob for EvaluateAlerts {
    #[tracing::instrument(name = "alerts.evaluate", skip_all, err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let db = ctx.db();
        let now = Utc::now();
        let watched = store::watched_sites(db).await?;
        let rules = store::enabled_rules(db).await?;
        let check_every = Duration::seconds(i64::from(env.config.metrics.uptime_interval_seconds));
        let readings = store::readings(db, now, check_every).await?;
        let plans: HashMap<Uuid, String> =
            customers::Entity::find().all(db).await?.into_iter().map(|c| (c.id, c.plan_id)).collect();
        let mut existing: HashMap<(Uuid, String), alerts::Model> =
            store::all_alerts(db).await?.into_iter().map(|a| ((a.site_id, a.metric.clone()), a)).collect();
        let hold = Duration::seconds(i64::from(env.config.metrics.alerts_resolve_hold_seconds));
        let restart_after = i64::from(env.config.metrics.alerts_restart_after_failed_checks);
        let no_reading = Reading::default();
        for &(site_id, customer_id) in &watched {
            let reading = readings.get(&site_id).unwrap_or(&no_reading);
            for metric in alerting::METRICS {
                let previous = existing.remove(&(site_id, metric.to_owned()));
                let plan = plans.get(&customer_id).map(String::as_str);
                let rule = store::rule_for(&rules, metric, site_id, plan);
                let value = reading.value(metric);
                let (breach, timing, rule_id) = match (rule, value) {
                    (Some(rule), Some(value)) => (
                        Severity::of(value, rule.warning, rule.critical),
                        Timing { for_duration: Duration::seconds(i64::from(rule.for_seconds)), hold },
                        rule.id,
                    ),
                    // No data: the alert stays as it is until data comes.
                    (Some(_), None) => continue,
                    // The rule was switched off: what fires resolves.
                    (None, _) => match &previous {
                        Some(p) => (None, Timing { for_duration: Duration::zero(), hold: Duration::zero() }, p.rule_id),
                        None => continue,
                    },
                };
                let incident =
                    evaluate(ctx, site_id, customer_id, metric, rule, value, previous, breach, timing, rule_id, now)
                        .await?;
                // Remediation: one restart per incident of a site that keeps failing its checks.
                if let (Some(incident_id), "down", true) = (incident, metric, restart_after > 0) {
                    if reading.failed_checks >= restart_after
                        && !store::has_event(db, incident_id, "remediated").await?
                    {
                        let job = RemediateSite { incident_id, site_id, failed_checks: reading.failed_checks };
                        berth_core::jobs::enqueue(db, &job).await?;
                    }
                }
            }
        }
        // Sites no longer meant to run (stopped by their owner, deleted): whatever was pending
        // or firing for them clears.
        for previous in existing.into_values() {
            if matches!(Phase::parse(&previous.state), Some(Phase::Pending | Phase::Firing)) {
                let timing = Timing { for_duration: Duration::zero(), hold };
                let metric = alerting::METRICS.into_iter().find(|m| *m == previous.metric).unwrap_or("down");
                let (site, customer, rule_id) = (previous.site_id, previous.customer_id, previous.rule_id);
                evaluate(ctx, site, customer, metric, None, None, Some(previous), None, timing, rule_id, now).await?;
            }
        }
        Ok(())
    }
}

/// Steps one alert and stores it when anything changed. Returns the incident of an alert that
/// is firing after this step.
#[allow(clippy::too_many_arguments)]
async fn evaluate(
    ctx: &JobContext,
    site_id: Uuid,
    customer_id: Uuid,
    metric: &'static str,
    rule: Option<&alert_rules::Model>,
    value: Option<f64>,
    previous: Option<alerts::Model>,
    breach: Option<Severity>,
    timing: Timing,
    rule_id: Uuid,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    let before = previous.as_ref().map(store::status_of).unwrap_or_else(Status::ok);
    let (next, transition) = alerting::step(&before, breach, now, timing);
    let active = matches!(next.phase, Phase::Pending | Phase::Firing);
    let value_moved = active && previous.as_ref().is_some_and(|p| p.value != value);
    if previous.is_none() && next.phase == Phase::Ok {
        return Ok(None);
    }
    let firing_incident = previous.as_ref().and_then(|p| p.incident_id).filter(|_| next.phase == Phase::Firing);
    if transition.is_none() && next == before && !value_moved {
        return Ok(firing_incident);
    }
    let detail = describe(metric, value, rule, transition);
    let touched = store::record(
        ctx.db(),
        Evaluated {
            site_id,
            customer_id,
            metric,
            rule_id,
            value,
            previous,
            next: next.clone(),
            transition,
            detail,
            now,
        },
    )
    .await?;
    match transition {
        Some(Transition::Fired(severity)) => {
            tracing::info!(site.id = %site_id, metric, severity = severity.as_str(), value, "Alert fired");
            Ok(touched)
        }
        Some(Transition::Resolved) => {
            tracing::info!(site.id = %site_id, metric, value, "Alert resolved");
            Ok(None)
        }
        None => Ok(firing_incident),
    }
}

/// The timeline line of a transition.
fn describe(
    metric: &str,
    value: Option<f64>,
    rule: Option<&alert_rules::Model>,
    transition: Option<Transition>,
) -> String {
    let v = value.unwrap_or(0.0);
    let threshold = |severity: Severity| {
        rule.map(|r| if severity == Severity::Critical { r.critical } else { r.warning }).unwrap_or(0.0)
    };
    match (transition, metric) {
        (Some(Transition::Fired(s)), "down") => {
            format!("no passing uptime check for {v:.0} s ({} at {:.0} s)", s.as_str(), threshold(s))
        }
        (Some(Transition::Fired(s)), "memory") => {
            format!("memory at {v:.1} % of the limit ({} at {:.0} %)", s.as_str(), threshold(s))
        }
        (Some(Transition::Fired(s)), _) => {
            format!("CPU at {v:.1} % of one core ({} at {:.0} %)", s.as_str(), threshold(s))
        }
        (_, "down") if value.is_some() => "answering again".into(),
        (_, _) if value.is_some() => format!("{metric} back to {v:.1} %"),
        _ => "no longer watched (the site stopped or its rule was switched off)".into(),
    }
}

/// One line saying what is wrong with a site.
fn summary(site: &str, metric: &str) -> String {
    match metric {
        "down" => format!("{site} is down"),
        "memory" => format!("{site}: memory use is high"),
        _ => format!("{site}: CPU use is high"),
    }
}

#[async_trait]
impl RunJob for NotifyAlert {
    #[tracing::instrument(name = "alerts.notify", skip_all, fields(incident.id = %self.incident_id, channel.id = %self.channel_id), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let db = ctx.db();
        let Some(incident) = store::incident_by_id(db, self.incident_id).await? else { return Ok(()) };
        // A channel deleted or switched off since is not written to.
        let Some(channel) = store::channel_by_id(db, self.channel_id).await?.filter(|c| c.enabled) else {
            return Ok(());
        };
        let site_name = sites::Entity::find_by_id(incident.site_id)
            .one(db)
            .await?
            .map(|s| s.name)
            .unwrap_or_else(|| incident.site_id.to_string());
        let resolved = self.transition == "resolved";
        match channel.kind.as_str() {
            "email" => send_mail(ctx, &incident, &channel, &site_name, resolved).await?,
            "webhook" => send_webhook(ctx, &incident, &channel, &site_name, resolved).await?,
            other => anyhow::bail!("unknown channel kind `{other}`"),
        }
        let what = if resolved { "resolved notice" } else { "alert" };
        let detail = format!("{what} sent by {} to {}", channel.kind, channel.target);
        store::add_event(&env.db, incident.id, "notified", &detail, Utc::now()).await?;
        tracing::info!(channel.kind = %channel.kind, transition = %self.transition, "Alert notification sent");
        Ok(())
    }
}

fn incident_url(ctx: &JobContext, incident: &incidents::Model) -> String {
    let base = ctx.env.config.server.public_url.as_str().trim_end_matches('/').to_owned();
    format!("{base}/api/v1/incidents/{}", incident.id)
}

async fn send_mail(
    ctx: &JobContext,
    incident: &incidents::Model,
    channel: &notification_channels::Model,
    site_name: &str,
    resolved: bool,
) -> anyhow::Result<()> {
    let at = if resolved { incident.resolved_at } else { Some(incident.opened_at) }.unwrap_or_else(Utc::now);
    let summary = summary(site_name, &incident.metric);
    let url = incident_url(ctx, incident);
    let transition = if resolved { "resolved" } else { "fired" };
    let mail = berth_integrations::mail::alert(berth_integrations::mail::AlertNotice {
        to: &channel.target,
        resolved,
        severity: &incident.severity,
        summary: &summary,
        site_name,
        metric: &incident.metric,
        at: &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        incident_url: &url,
        fingerprint: &incident.fingerprint,
        // Stable across retries: a resent notice is recognisably the same message.
        message_id: format!("<alert-{}-{transition}-{}@berth>", incident.id, channel.id),
    })?;
    ctx.env.mailer.send(&mail).await?;
    Ok(())
}

async fn send_webhook(
    ctx: &JobContext,
    incident: &incidents::Model,
    channel: &notification_channels::Model,
    site_name: &str,
    resolved: bool,
) -> anyhow::Result<()> {
    let subnets = [ctx.env.config.runtime.site_subnets.into()];
    // Checked again at send time: the host's address may have changed since creation. The
    // request then connects to exactly the addresses checked.
    let target = berth_core::net::check_webhook_url(&channel.target, channel.allow_private, &subnets)
        .await
        .map_err(|e| anyhow::anyhow!("webhook target refused: {e}"))?;
    let body = serde_json::json!({
        "fingerprint": incident.fingerprint,
        "status": if resolved { "resolved" } else { "firing" },
        "severity": incident.severity,
        "metric": incident.metric,
        "summary": summary(site_name, &incident.metric),
        "incident_id": incident.id,
        "incident_url": incident_url(ctx, incident),
        "site": {"id": incident.site_id, "name": site_name},
        "customer_id": incident.customer_id,
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WEBHOOK_TIMEOUT)
        .resolve_to_addrs(&target.host, &target.addrs)
        .build()?;
    client.post(target.url).json(&body).send().await?.error_for_status()?;
    Ok(())
}

#[async_trait]
impl RunJob for RemediateSite {
    #[tracing::instrument(name = "alerts.remediate", skip_all, fields(site.id = %self.site_id), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        if store::has_event(&env.db, self.incident_id, "remediated").await? {
            return Ok(());
        }
        let ops = berth_ops::Ops::new(env.db.clone(), env.keys.clone(), env.runtime.clone())
            .with_backups(env.backups.clone());
        let detail = match ops.restart_site(&Caller::system("alerts"), self.site_id).await {
            Ok(_) => format!("restarted after {} failed uptime checks", self.failed_checks),
            Err(e) => format!("restart after {} failed uptime checks failed: {e}", self.failed_checks),
        };
        store::add_event(&env.db, self.incident_id, "remediated", &detail, Utc::now()).await?;
        tracing::info!(detail, "Site remediation");
        Ok(())
    }
}
