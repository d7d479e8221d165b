//! Runs the alerting jobs defined in `berth_core::jobs::alerts`: the evaluation (readings →
//! state machine → stored alerts, incidents and queued notifications), the notifications
//! themselves (e-mail through the mailer, webhooks as JSON to checked addresses) and the
//! optional restart of a site that stopped answering.

use std::collections::HashMap;

use async_trait::async_trait;
use berth_core::access::Caller;
use berth_core::alerting::{self, Phase, Severity, Status, Timing, Transition};
use berth_core::entities::{alert_rules, alerts, customers, incidents, notification_channels, sites};
use berth_core::jobs::alerts::{EvaluateAlerts, NotifyAlert, NotifyAlertGroup, RemediateSite};
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
        let mut readings = store::readings(db, now, check_every).await?;
        certificate_days(env, db, &watched, &mut readings, now).await?;
        backup_failures(db, &watched, &mut readings).await?;
        let plans: HashMap<Uuid, String> =
            customers::Entity::find().all(db).await?.into_iter().map(|c| (c.id, c.plan_id)).collect();
        let mut existing: HashMap<(Uuid, String), alerts::Model> =
            store::all_alerts(db).await?.into_iter().map(|a| ((a.site_id, a.metric.clone()), a)).collect();
        let hold = Duration::seconds(i64::from(env.config.metrics.alerts_resolve_hold_seconds));
        let restart_after = i64::from(env.config.metrics.alerts_restart_after_failed_checks);
        let no_reading = Reading::default();
        let mut round = Vec::new();
        // Down alerts firing after this round: (site, incident if already open, failed checks).
        let mut down_firing: Vec<(Uuid, Option<Uuid>, i64)> = Vec::new();
        for &(site_id, customer_id) in &watched {
            let reading = readings.get(&site_id).unwrap_or(&no_reading);
            for metric in alerting::METRICS {
                let previous = existing.remove(&(site_id, metric.to_owned()));
                let plan = plans.get(&customer_id).map(String::as_str);
                let rule = store::rule_for(&rules, metric, site_id, plan);
                let value = reading.value(metric);
                let (breach, timing, rule_id) = match (rule, value) {
                    (Some(rule), Some(value)) => (
                        Severity::of_metric(metric, value, rule.warning, rule.critical),
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
                let step = Step { site_id, customer_id, metric, rule, value, breach, timing, rule_id, now };
                let (firing, evaluated) = plan_step(step, previous);
                if let Some(e) = evaluated {
                    round.push(e);
                }
                if let (Some(incident), "down") = (firing, metric) {
                    down_firing.push((site_id, incident, reading.failed_checks));
                }
            }
        }
        // Sites no longer meant to run (stopped by their owner, deleted): whatever was pending
        // or firing for them clears.
        for previous in existing.into_values() {
            if matches!(Phase::parse(&previous.state), Some(Phase::Pending | Phase::Firing)) {
                let timing = Timing { for_duration: Duration::zero(), hold };
                let metric = alerting::METRICS.into_iter().find(|m| *m == previous.metric).unwrap_or("down");
                let (site_id, customer_id, rule_id) = (previous.site_id, previous.customer_id, previous.rule_id);
                let step =
                    Step { site_id, customer_id, metric, rule: None, value: None, breach: None, timing, rule_id, now };
                if let (_, Some(e)) = plan_step(step, Some(previous)) {
                    round.push(e);
                }
            }
        }
        let group_min = usize::try_from(env.config.metrics.alerts_group_min_sites).unwrap_or(usize::MAX);
        let changed = !round.is_empty();
        let touched = if changed { store::record_round(db, round, group_min).await? } else { Vec::new() };
        if changed {
            // Committed: the cached alert states and dashboard must not outlive the change.
            berth_core::store::alert_states::invalidate(&env.cache).await;
        }
        for t in &touched {
            tracing::info!(site.id = %t.site_id, metric = t.metric, transition = t.transition, incident.id = %t.incident_id, "Alert changed");
        }
        // Remediation: one restart per incident of a site that keeps failing its checks.
        if restart_after > 0 {
            for (site_id, incident, failed_checks) in down_firing {
                let incident = incident.or_else(|| {
                    touched
                        .iter()
                        .find(|t| t.site_id == site_id && t.metric == "down" && t.transition == "fired")
                        .map(|t| t.incident_id)
                });
                let Some(incident_id) = incident else { continue };
                if failed_checks >= restart_after && !store::has_event(db, incident_id, "remediated").await? {
                    let job = RemediateSite { incident_id, site_id, failed_checks };
                    berth_core::jobs::enqueue(db, &job).await?;
                }
            }
        }
        Ok(())
    }
}

/// Reads the days left of every watched site's stored certificates (the soonest expiry of its
/// domains) into the readings; a site without a stored certificate has no reading.
async fn certificate_days(
    env: &crate::env::Env,
    db: &sea_orm::DatabaseConnection,
    watched: &[(Uuid, Uuid)],
    readings: &mut HashMap<Uuid, Reading>,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = watched.iter().map(|(site, _)| *site).collect();
    for (site, domains) in store::domains_of(db, &ids).await? {
        let mut soonest: Option<chrono::DateTime<Utc>> = None;
        for domain in &domains {
            if let Some(at) = env.certs.not_after(domain).await {
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
            }
        }
        if let Some(at) = soonest {
            let days = (at - now).num_seconds() as f64 / 86_400.0;
            readings.entry(site).or_default().certificate_days = Some(days);
        }
    }
    Ok(())
}

/// Reads each watched site's failed backups since its last good one, and whether its customer's
/// repository failed its latest integrity check or the site's newest restore drill failed, into
/// the readings.
async fn backup_failures(
    db: &sea_orm::DatabaseConnection,
    watched: &[(Uuid, Uuid)],
    readings: &mut HashMap<Uuid, Reading>,
) -> anyhow::Result<()> {
    let failing = berth_core::store::backups::failing_sites(db).await?;
    let damaged = berth_core::store::backup_checks::failing_customers(db).await?;
    let drills_failed = berth_core::store::backup_drills::failing_sites(db).await?;
    for (site, customer) in watched {
        let failures = failing.get(site).copied().unwrap_or(0);
        let check_failed = damaged.contains(customer) || drills_failed.contains(site);
        if failures > 0 || check_failed {
            let reading = readings.entry(*site).or_default();
            reading.backup_failures = failures;
            reading.backup_check_failed = check_failed;
        }
    }
    Ok(())
}

/// One alert's inputs to the state machine.
struct Step<'a> {
    site_id: Uuid,
    customer_id: Uuid,
    metric: &'static str,
    rule: Option<&'a alert_rules::Model>,
    value: Option<f64>,
    breach: Option<Severity>,
    timing: Timing,
    rule_id: Uuid,
    now: chrono::DateTime<Utc>,
}

/// Steps one alert. Returns whether it fires after this step (with its incident when one is
/// already open: `Some(None)` for one that fires in this very step) and what to store, if
/// anything changed.
fn plan_step(s: Step<'_>, previous: Option<alerts::Model>) -> (Option<Option<Uuid>>, Option<Evaluated>) {
    let before = previous.as_ref().map(store::status_of).unwrap_or_else(Status::ok);
    let (next, transition) = alerting::step(&before, s.breach, s.now, s.timing);
    let active = matches!(next.phase, Phase::Pending | Phase::Firing);
    let value_moved = active && previous.as_ref().is_some_and(|p| p.value != s.value);
    let firing = (next.phase == Phase::Firing).then(|| match transition {
        Some(Transition::Fired(_)) => None,
        _ => previous.as_ref().and_then(|p| p.incident_id),
    });
    if previous.is_none() && next.phase == Phase::Ok {
        return (None, None);
    }
    if transition.is_none() && next == before && !value_moved {
        return (firing, None);
    }
    let detail = describe(s.metric, s.value, s.rule, transition);
    let evaluated = Evaluated {
        site_id: s.site_id,
        customer_id: s.customer_id,
        metric: s.metric,
        rule_id: s.rule_id,
        value: s.value,
        previous,
        next,
        transition,
        detail,
        now: s.now,
    };
    (firing, Some(evaluated))
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
    let severity = match transition {
        Some(Transition::Fired(s)) => Some(s),
        Some(Transition::Escalated) => Some(Severity::Critical),
        _ => None,
    };
    match (severity, metric) {
        (Some(s), "down") => format!("no passing uptime check for {v:.0} s ({} at {:.0} s)", s.as_str(), threshold(s)),
        (Some(s), "memory") => format!("memory at {v:.1} % of the limit ({} at {:.0} %)", s.as_str(), threshold(s)),
        (Some(s), "restarts") => {
            format!("the container restarted {v:.0} times in 10 minutes ({} at {:.0})", s.as_str(), threshold(s))
        }
        (Some(s), "certificate") => {
            format!("the certificate expires in {v:.1} days ({} at {:.0} days)", s.as_str(), threshold(s))
        }
        (Some(s), "disk") => {
            format!("the volume uses {v:.1} % of the plan's storage ({} at {:.0} %)", s.as_str(), threshold(s))
        }
        (Some(s), "backup") => {
            format!("{v:.0} backup(s) failed in a row since the last good one ({} at {:.0})", s.as_str(), threshold(s))
        }
        (Some(_), "backup_check") => {
            "the backup repository's integrity check or the site's restore drill failed".into()
        }
        (Some(s), _) => format!("CPU at {v:.1} % of one core ({} at {:.0} %)", s.as_str(), threshold(s)),
        (None, "down") if value.is_some() => "answering again".into(),
        (None, "restarts") if value.is_some() => "no restart in the last 10 minutes".into(),
        (None, "certificate") if value.is_some() => format!("the certificate is valid for {v:.1} more days"),
        (None, "backup") if value.is_some() => "a backup succeeded again".into(),
        (None, "backup_check") if value.is_some() => {
            "the backup repository's check and the site's restore drill pass again".into()
        }
        (None, _) if value.is_some() => format!("{metric} back to {v:.1} %"),
        _ => "no longer watched (the site stopped or its rule was switched off)".into(),
    }
}

/// One line saying what is wrong with a site.
fn summary(site: &str, metric: &str) -> String {
    match metric {
        "down" => format!("{site} is down"),
        "memory" => format!("{site}: memory use is high"),
        "restarts" => format!("{site}: the container keeps restarting"),
        "certificate" => format!("{site}: the certificate expires soon"),
        "disk" => format!("{site}: the volume is nearly full"),
        "backup" => format!("{site}: backups are failing"),
        "backup_check" => format!("{site}: the backup repository failed its integrity check"),
        _ => format!("{site}: CPU use is high"),
    }
}

async fn site_name(db: &sea_orm::DatabaseConnection, incident: &incidents::Model) -> anyhow::Result<String> {
    Ok(sites::Entity::find_by_id(incident.site_id)
        .one(db)
        .await?
        .map(|s| s.name)
        .unwrap_or_else(|| incident.site_id.to_string()))
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
        let site_name = site_name(db, &incident).await?;
        let transition = self.transition.as_str();
        let resolved = transition == "resolved";
        match channel.kind.as_str() {
            "email" => send_mail(ctx, &incident, &channel, &site_name, transition).await?,
            "webhook" | "slack" | "discord" => {
                let body = webhook_body(ctx, &channel.kind, &[(&incident, site_name.as_str())], transition);
                post_webhook(ctx, &channel, &body).await?
            }
            other => anyhow::bail!("unknown channel kind `{other}`"),
        }
        let what = match transition {
            "resolved" => "resolved notice",
            "escalated" => "escalation",
            _ => "alert",
        };
        let detail = format!("{what} sent by {} to {}", channel.kind, channel.target);
        store::add_event(&env.db, incident.id, "notified", &detail, Utc::now()).await?;
        tracing::info!(channel.kind = %channel.kind, transition, resolved, "Alert notification sent");
        Ok(())
    }
}

#[async_trait]
impl RunJob for NotifyAlertGroup {
    #[tracing::instrument(name = "alerts.notify_group", skip_all, fields(channel.id = %self.channel_id, incidents = self.incident_ids.len()), err)]
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let env = ctx.env.as_ref();
        let db = ctx.db();
        let Some(channel) = store::channel_by_id(db, self.channel_id).await?.filter(|c| c.enabled) else {
            return Ok(());
        };
        let mut incidents = Vec::with_capacity(self.incident_ids.len());
        for id in &self.incident_ids {
            if let Some(incident) = store::incident_by_id(db, *id).await? {
                let name = site_name(db, &incident).await?;
                incidents.push((incident, name));
            }
        }
        if incidents.is_empty() {
            return Ok(());
        }
        let transition = self.transition.as_str();
        let resolved = transition == "resolved";
        match channel.kind.as_str() {
            "email" => {
                let lines: Vec<berth_integrations::mail::GroupLine> = incidents
                    .iter()
                    .map(|(i, name)| berth_integrations::mail::GroupLine {
                        site_name: name.clone(),
                        severity: i.severity.clone(),
                        summary: summary(name, &i.metric),
                        incident_url: incident_url(ctx, i),
                    })
                    .collect();
                let severity =
                    if incidents.iter().any(|(i, _)| i.severity == "critical") { "critical" } else { "warning" };
                let first = incidents.iter().map(|(i, _)| i.id).min().unwrap_or_default();
                let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let mail = berth_integrations::mail::alert_group(berth_integrations::mail::AlertGroupNotice {
                    to: &channel.target,
                    resolved,
                    severity,
                    at: &at,
                    lines: &lines,
                    message_id: format!("<alert-group-{first}-{transition}-{}@berth>", channel.id),
                })?;
                env.mailer.send(&mail).await?;
            }
            "webhook" | "slack" | "discord" => {
                let pairs: Vec<(&incidents::Model, &str)> = incidents.iter().map(|(i, n)| (i, n.as_str())).collect();
                let body = webhook_body(ctx, &channel.kind, &pairs, transition);
                post_webhook(ctx, &channel, &body).await?
            }
            other => anyhow::bail!("unknown channel kind `{other}`"),
        }
        let detail = format!(
            "{} sent by {} to {}, grouped with {} other sites",
            if resolved { "resolved notice" } else { "alert" },
            channel.kind,
            channel.target,
            incidents.len() - 1
        );
        for (incident, _) in &incidents {
            store::add_event(&env.db, incident.id, "notified", &detail, Utc::now()).await?;
        }
        tracing::info!(channel.kind = %channel.kind, transition, sites = incidents.len(), "Grouped alert notification sent");
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
    transition: &str,
) -> anyhow::Result<()> {
    let resolved = transition == "resolved";
    let at = match transition {
        "resolved" => incident.resolved_at,
        "escalated" => None,
        _ => Some(incident.opened_at),
    }
    .unwrap_or_else(Utc::now);
    let summary = summary(site_name, &incident.metric);
    let url = incident_url(ctx, incident);
    let mail = berth_integrations::mail::alert(berth_integrations::mail::AlertNotice {
        to: &channel.target,
        resolved,
        escalated: transition == "escalated",
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

/// The JSON a webhook channel is sent for these incidents (one, or a group): Berth's own shape
/// for `webhook`, Slack's incoming-webhook shape (`text` plus `blocks`) for `slack`, Discord's
/// (`content` plus `embeds`) for `discord`.
fn webhook_body(
    ctx: &JobContext,
    kind: &str,
    incidents: &[(&incidents::Model, &str)],
    transition: &str,
) -> serde_json::Value {
    let status = match transition {
        "resolved" => "resolved",
        _ => "firing",
    };
    let label = |i: &incidents::Model| match transition {
        "resolved" => "RESOLVED".to_owned(),
        "escalated" => format!("{} (escalated)", i.severity.to_uppercase()),
        _ => i.severity.to_uppercase(),
    };
    let line = |(i, name): &(&incidents::Model, &str)| format!("[{}] {}", label(i), summary(name, &i.metric));
    let text = match incidents {
        [one] => line(one),
        many => format!("{} sites: {}", many.len(), many.iter().map(line).collect::<Vec<_>>().join("; ")),
    };
    match kind {
        "slack" => serde_json::json!({
            "text": text,
            "blocks": incidents.iter().map(|pair| {
                let (i, _) = pair;
                serde_json::json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": format!("*{}*\n<{}|incident> · fingerprint `{}`", line(pair), incident_url(ctx, i), i.fingerprint)},
                })
            }).collect::<Vec<_>>(),
        }),
        "discord" => serde_json::json!({
            // Discord limits `content` to 2,000 characters and a message to 10 embeds.
            "content": text.chars().take(2000).collect::<String>(),
            "embeds": incidents.iter().take(10).map(|pair| {
                let (i, _) = pair;
                serde_json::json!({
                    "title": line(pair),
                    "url": incident_url(ctx, i),
                    "color": match (status, i.severity.as_str()) {
                        ("resolved", _) => 0x1a7f37,
                        (_, "critical") => 0xcf222e,
                        _ => 0xbf8700,
                    },
                    "footer": {"text": format!("fingerprint {}", i.fingerprint)},
                })
            }).collect::<Vec<_>>(),
        }),
        _ => {
            let one = |(i, name): &(&incidents::Model, &str)| {
                serde_json::json!({
                    "fingerprint": i.fingerprint,
                    "status": status,
                    "transition": transition,
                    "severity": i.severity,
                    "metric": i.metric,
                    "summary": summary(name, &i.metric),
                    "incident_id": i.id,
                    "incident_url": incident_url(ctx, i),
                    "site": {"id": i.site_id, "name": name},
                    "customer_id": i.customer_id,
                    "opened_at": i.opened_at,
                    "resolved_at": i.resolved_at,
                })
            };
            match incidents {
                [single] => one(single),
                many => serde_json::json!({
                    "status": status,
                    "transition": transition,
                    "grouped": true,
                    "summary": text,
                    "alerts": many.iter().map(one).collect::<Vec<_>>(),
                }),
            }
        }
    }
}

/// POSTs `body` to a webhook channel (any kind): the target is checked again at send time (the
/// host's address may have changed since creation) and the request connects to exactly the
/// addresses checked; no redirects, a timeout, any non-2xx an error (retried).
pub(crate) async fn post_webhook(
    ctx: &JobContext,
    channel: &notification_channels::Model,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let subnets = [ctx.env.config.runtime.site_subnets.into()];
    let target = berth_core::net::check_webhook_url(&channel.target, channel.allow_private, &subnets)
        .await
        .map_err(|e| anyhow::anyhow!("webhook target refused: {e}"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WEBHOOK_TIMEOUT)
        .resolve_to_addrs(&target.host, &target.addrs)
        .build()?;
    client.post(target.url).json(body).send().await?.error_for_status()?;
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
        let detail = match ops.recover_site(&Caller::system("alerts"), self.site_id).await {
            Ok(berth_ops::sites::Recovery::Restarted) => {
                format!("restarted after {} failed uptime checks", self.failed_checks)
            }
            Ok(berth_ops::sites::Recovery::Started) => {
                format!("started the stopped container after {} failed uptime checks", self.failed_checks)
            }
            Err(e) => format!("restart after {} failed uptime checks failed: {e}", self.failed_checks),
        };
        store::add_event(&env.db, self.incident_id, "remediated", &detail, Utc::now()).await?;
        tracing::info!(detail, "Site remediation");
        Ok(())
    }
}
