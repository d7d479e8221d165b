//! Alerting data: rules (admins edit them), the readings the evaluation compares with them,
//! alerts and the incidents their firings open (tenant-scoped like sites), and notification
//! channels. The state machine itself is pure, in [`crate::alerting`]; [`record`] stores one
//! evaluated alert and, on a transition, its incident and notifications in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    Statement, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Event};
use super::metrics::placeholders;
use super::page::{Page, Paged};
use crate::access::{self, Caller, Scoped};
use crate::alerting::{Phase, Severity, Status, Transition};
use crate::entities::{alert_rules, alerts, incident_events, incidents, notification_channels};
use crate::error::{Error, Fields, Result};
use crate::jobs::alerts::{NotifyAlert, NotifyAlertGroup};
use crate::validate;

/// How far back the evaluation looks for samples and uptime checks; a site down for longer
/// reads as down for this long.
const LOOKBACK_MS: i64 = 3_600_000;
/// An uptime check may take this long (its timeout) beyond its round.
const CHECK_SLACK_MS: i64 = 10_000;
/// A sample older than this is no reading at all.
const SAMPLE_FRESH_MS: i64 = 120_000;
/// The `restarts` value counts the container's restarts within this window.
pub const RESTART_WINDOW_MS: i64 = 600_000;
/// A disk measurement older than this is no reading (a few missed 5-minute rounds).
const DISK_FRESH_MS: i64 = 1_800_000;

// ----- rules -----

/// Every rule (admins only).
pub async fn rules(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<alert_rules::Model>> {
    caller.require_admin()?;
    Ok(alert_rules::Entity::find().order_by_asc(alert_rules::Column::Id).all(db).await?)
}

/// The enabled rules, for the evaluation.
pub async fn enabled_rules(db: &impl ConnectionTrait) -> Result<Vec<alert_rules::Model>> {
    Ok(alert_rules::Entity::find().filter(alert_rules::Column::Enabled.eq(true)).all(db).await?)
}

/// A change to a rule; absent fields stay.
#[derive(Debug, Default, Clone)]
pub struct RulePatch {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_seconds: Option<i32>,
    pub enabled: Option<bool>,
}

/// Changes a rule's thresholds, `for` duration or switch (admins only), audited.
pub async fn update_rule<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    patch: RulePatch,
) -> Result<alert_rules::Model> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let rule = alert_rules::Entity::find_by_id(id).one(&txn).await?.ok_or(Error::NotFound("alert rule"))?;
    let warning = patch.warning.unwrap_or(rule.warning);
    let critical = patch.critical.unwrap_or(rule.critical);
    let for_seconds = patch.for_seconds.unwrap_or(rule.for_seconds);
    let mut fields = Fields::new();
    check_thresholds(&mut fields, &rule.metric, warning, critical, for_seconds);
    fields.finish()?;
    let mut active: alert_rules::ActiveModel = rule.clone().into();
    active.warning = Set(warning);
    active.critical = Set(critical);
    active.for_seconds = Set(for_seconds);
    active.enabled = Set(patch.enabled.unwrap_or(rule.enabled));
    active.updated_at = Set(super::now());
    let updated = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("alert_rule.update", "alert_rule", id).details(json!({
            "metric": updated.metric, "warning": updated.warning, "critical": updated.critical,
            "for_seconds": updated.for_seconds, "enabled": updated.enabled,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// The checks every rule's thresholds and `for` duration pass.
fn check_thresholds(fields: &mut Fields, metric: &str, warning: f64, critical: f64, for_seconds: i32) {
    let finite =
        |v: f64| if v.is_finite() && v >= 0.0 { Ok(()) } else { Err("must be a number of at least 0".to_owned()) };
    fields.check("warning", finite(warning));
    fields.check("critical", finite(critical));
    // Days until a certificate expires: the lower value is the worse one.
    if crate::alerting::lower_is_worse(metric) {
        if warning.is_finite() && critical.is_finite() && critical > warning {
            fields.check::<()>("critical", Err("must be at most the warning threshold".into()));
        }
    } else if warning.is_finite() && critical.is_finite() && critical < warning {
        fields.check::<()>("critical", Err("must be at least the warning threshold".into()));
    }
    if !(0..=86_400).contains(&for_seconds) {
        fields.check::<()>("for_seconds", Err("must be between 0 and 86400".into()));
    }
}

/// A plan's or a site's own rule for one metric, overriding the global one.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub metric: String,
    /// `plan` or `site` (the global rules are seeded, one per metric).
    pub scope: String,
    pub plan_id: Option<String>,
    pub site_id: Option<Uuid>,
    pub warning: f64,
    pub critical: f64,
    pub for_seconds: i32,
    pub enabled: bool,
}

/// Adds a plan- or site-scoped rule (admins only), audited. One rule per metric and scope
/// target: a second is a conflict.
pub async fn create_rule<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    new: NewRule,
) -> Result<alert_rules::Model> {
    use crate::entities::{plans, sites};
    caller.require_admin()?;
    let mut fields = Fields::new();
    if !crate::alerting::METRICS.contains(&new.metric.as_str()) {
        fields.push("metric", format!("must be one of {}", crate::alerting::METRICS.join(", ")));
    }
    let (plan_id, site_id) = match new.scope.as_str() {
        "plan" => match new.plan_id.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => (Some(p.to_owned()), None),
            None => {
                fields.push("plan_id", "is required for a plan's rule");
                (None, None)
            }
        },
        "site" => match new.site_id {
            Some(s) => (None, Some(s)),
            None => {
                fields.push("site_id", "is required for a site's rule");
                (None, None)
            }
        },
        "global" => {
            fields.push("scope", "global rules exist for every metric already: edit them instead");
            (None, None)
        }
        _ => {
            fields.push("scope", "must be plan or site");
            (None, None)
        }
    };
    check_thresholds(&mut fields, &new.metric, new.warning, new.critical, new.for_seconds);
    fields.finish()?;
    let txn = db.begin().await?;
    let mut customer = None;
    if let Some(p) = &plan_id {
        if plans::Entity::find_by_id(p.clone()).one(&txn).await?.is_none() {
            return Err(Error::invalid("plan_id", "no such plan"));
        }
    }
    if let Some(s) = site_id {
        let site = access::sites(caller)
            .filter(sites::Column::Id.eq(s))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::invalid("site_id", "no such site"))?;
        customer = Some(site.customer_id);
    }
    let twin = alert_rules::Entity::find()
        .filter(alert_rules::Column::Metric.eq(new.metric.as_str()))
        .filter(alert_rules::Column::Scope.eq(new.scope.as_str()))
        .filter(match (&plan_id, site_id) {
            (Some(p), _) => alert_rules::Column::PlanId.eq(p.as_str()),
            (_, Some(s)) => alert_rules::Column::SiteId.eq(s),
            _ => alert_rules::Column::Scope.eq("global"),
        })
        .one(&txn)
        .await?;
    if twin.is_some() {
        return Err(Error::Conflict(format!(
            "this {} already has its own {} rule: edit that one",
            new.scope, new.metric
        )));
    }
    let now = super::now();
    let model = alert_rules::ActiveModel {
        id: Set(Uuid::now_v7()),
        metric: Set(new.metric.clone()),
        scope: Set(new.scope.clone()),
        plan_id: Set(plan_id),
        site_id: Set(site_id),
        warning: Set(new.warning),
        critical: Set(new.critical),
        for_seconds: Set(new.for_seconds),
        enabled: Set(new.enabled),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        Event::new("alert_rule.create", "alert_rule", model.id).customer(customer).details(json!({
            "metric": model.metric, "scope": model.scope, "plan_id": model.plan_id, "site_id": model.site_id,
            "warning": model.warning, "critical": model.critical, "for_seconds": model.for_seconds,
            "enabled": model.enabled,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Removes a plan's or a site's rule (admins only), audited; the global rule applies again.
/// The global rules can be edited or switched off, not deleted (409).
pub async fn delete_rule<C: ConnectionTrait + TransactionTrait>(db: &C, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require_admin()?;
    let txn = db.begin().await?;
    let rule = alert_rules::Entity::find_by_id(id).one(&txn).await?.ok_or(Error::NotFound("alert rule"))?;
    if rule.scope == "global" {
        return Err(Error::Conflict("a global rule can be edited or switched off, not deleted".into()));
    }
    alert_rules::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("alert_rule.delete", "alert_rule", id).details(json!({
            "metric": rule.metric, "scope": rule.scope, "plan_id": rule.plan_id, "site_id": rule.site_id,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The rule that applies to a site's metric: the site's own, else its plan's, else the global
/// one (enabled rules only).
pub fn rule_for<'a>(
    rules: &'a [alert_rules::Model],
    metric: &str,
    site_id: Uuid,
    plan_id: Option<&str>,
) -> Option<&'a alert_rules::Model> {
    let of = |scope: &str| {
        rules.iter().find(|r| {
            r.metric == metric
                && r.scope == scope
                && match scope {
                    "site" => r.site_id == Some(site_id),
                    "plan" => plan_id.is_some() && r.plan_id.as_deref() == plan_id,
                    _ => true,
                }
        })
    };
    of("site").or_else(|| of("plan")).or_else(|| of("global"))
}

// ----- readings -----

/// What the evaluation knows of one site now. `None`: no recent data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub cpu_percent: Option<f64>,
    /// Memory in use, in percent of the container's limit.
    pub memory_percent: Option<f64>,
    /// Seconds since the first of the current run of failed uptime checks (0 when the last
    /// check passed).
    pub down_seconds: Option<f64>,
    /// The failed uptime checks in a row up to the last one (when the checks stopped reaching
    /// the site: the rounds since its last passing check).
    pub failed_checks: i64,
    /// How often the container restarted within the last 10 minutes.
    pub restarts: Option<f64>,
    /// Days until the first of the site's certificates expires (negative once expired); set by
    /// the evaluation job, which reads the stored certificates.
    pub certificate_days: Option<f64>,
    /// The site volume's use, in percent of the plan's `storage_mb`.
    pub disk_percent: Option<f64>,
    /// The site's backups that failed for good since its newest good one (0: none); set by the
    /// evaluation job from the backups table.
    pub backup_failures: i64,
    /// Whether the latest integrity check of the site's customer's repository failed.
    pub backup_check_failed: bool,
}

impl Reading {
    pub fn value(&self, metric: &str) -> Option<f64> {
        match metric {
            "cpu" => self.cpu_percent,
            "memory" => self.memory_percent,
            "down" => self.down_seconds,
            "restarts" => self.restarts,
            "certificate" => self.certificate_days,
            "disk" => self.disk_percent,
            // Always known: no failure on record reads as 0, so a firing alert resolves.
            "backup" => Some(self.backup_failures as f64),
            "backup_check" => Some(if self.backup_check_failed { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}

/// The sites alerts watch: every site whose owner wants it running (whatever Berth last
/// observed: a container that crashed or cannot start is exactly what the down alert is for),
/// as (site, customer).
pub async fn watched_sites(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, Uuid)>> {
    use crate::entities::sites;
    use crate::types::{DesiredState, SiteStatus};
    Ok(sites::Entity::find()
        .filter(sites::Column::DesiredState.eq(DesiredState::Running))
        .filter(sites::Column::Status.ne(SiteStatus::Deleting))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.customer_id))
        .collect())
}

/// The domains of the watched sites (their certificates are what the `certificate` rule reads).
pub async fn domains_of(db: &impl ConnectionTrait, site_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>> {
    super::sites::domains_of(db, Some(site_ids)).await
}

/// The latest sample and the current run of failed uptime checks of every site with recent
/// data: two grouped queries, plus one per site whose last check failed or is stale.
///
/// A site is down since its first failed check after the last passing one; when no check
/// failed but none passed for longer than a round (`check_every`, plus the check's timeout),
/// the checks stopped reaching it (it is no longer running) and it is down since one round
/// after the last passing check.
pub async fn readings(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    check_every: chrono::Duration,
) -> Result<HashMap<Uuid, Reading>> {
    let backend = db.get_database_backend();
    let now_ms = now.timestamp_millis();
    let mut out: HashMap<Uuid, Reading> = HashMap::new();
    let sql = "SELECT s.site_id, s.cpu_percent, s.memory_bytes, s.memory_limit_bytes, s.restarts FROM site_samples s \
               JOIN (SELECT site_id, MAX(at_ms) AS at_ms FROM site_samples WHERE at_ms >= $1 GROUP BY site_id) l \
               ON s.site_id = l.site_id AND s.at_ms = l.at_ms WHERE s.at_ms >= $2";
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            [(now_ms - SAMPLE_FRESH_MS).into(), (now_ms - SAMPLE_FRESH_MS).into()],
        ))
        .await?;
    for row in rows {
        let site: Uuid = row.try_get("", "site_id")?;
        let memory: i64 = row.try_get("", "memory_bytes")?;
        let limit: i64 = row.try_get("", "memory_limit_bytes")?;
        let restarts: i64 = row.try_get("", "restarts")?;
        let reading = out.entry(site).or_default();
        reading.cpu_percent = row.try_get("", "cpu_percent")?;
        reading.memory_percent = (limit > 0).then(|| memory as f64 * 100.0 / limit as f64);
        // Until the window's low mark is read below: no restart seen.
        reading.restarts = Some(restarts as f64);
    }
    // Restarts within the window: the latest count minus the lowest in the window (a new
    // container starts again from 0, which this reads as no restart rather than a negative).
    let sql = "SELECT site_id, MIN(restarts) AS low FROM site_samples WHERE at_ms >= $1 GROUP BY site_id";
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            [(now_ms - RESTART_WINDOW_MS).into()],
        ))
        .await?;
    for row in rows {
        let site: Uuid = row.try_get("", "site_id")?;
        let low: i64 = row.try_get("", "low")?;
        if let Some(reading) = out.get_mut(&site) {
            reading.restarts = reading.restarts.map(|latest| (latest - low as f64).max(0.0));
        }
    }
    // The latest disk measurement of each site against its plan's quota.
    let sql = "SELECT d.site_id, d.bytes, d.limit_bytes FROM site_disk_usage d \
               JOIN (SELECT site_id, MAX(at_ms) AS at_ms FROM site_disk_usage WHERE at_ms >= $1 GROUP BY site_id) l \
               ON d.site_id = l.site_id AND d.at_ms = l.at_ms";
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            placeholders(backend, sql),
            [(now_ms - DISK_FRESH_MS).into()],
        ))
        .await?;
    for row in rows {
        let site: Uuid = row.try_get("", "site_id")?;
        let bytes: i64 = row.try_get("", "bytes")?;
        let limit: i64 = row.try_get("", "limit_bytes")?;
        if limit > 0 {
            out.entry(site).or_default().disk_percent = Some(bytes as f64 * 100.0 / limit as f64);
        }
    }
    let since_ms = now_ms - LOOKBACK_MS;
    let sql = "SELECT site_id, MAX(at_ms) AS last_at, MAX(CASE WHEN up THEN at_ms ELSE NULL END) AS last_up_at \
               FROM site_checks WHERE at_ms >= $1 GROUP BY site_id";
    let rows =
        db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, sql), [since_ms.into()])).await?;
    for row in rows {
        let site: Uuid = row.try_get("", "site_id")?;
        let last_at: i64 = row.try_get("", "last_at")?;
        let last_up: Option<i64> = row.try_get("", "last_up_at")?;
        let reading = out.entry(site).or_default();
        let round_ms = check_every.num_milliseconds() + CHECK_SLACK_MS;
        if last_up == Some(last_at) {
            // The last check passed; if it is stale, the checks no longer reach the site.
            let overdue = now_ms - last_at - round_ms;
            reading.down_seconds = Some(if overdue > 0 {
                (now_ms - last_at - check_every.num_milliseconds()) as f64 / 1000.0
            } else {
                0.0
            });
            // The rounds missed since the last passing check count as failed checks.
            let every = check_every.num_milliseconds().max(1);
            reading.failed_checks = if overdue > 0 { (now_ms - last_at) / every - 1 } else { 0 };
            continue;
        }
        let sql = "SELECT MIN(at_ms) AS first_at, COUNT(*) AS n FROM site_checks WHERE site_id = $1 AND at_ms > $2";
        let after = last_up.unwrap_or(since_ms - 1);
        let Some(run) = db
            .query_one(Statement::from_sql_and_values(backend, placeholders(backend, sql), [site.into(), after.into()]))
            .await?
        else {
            continue;
        };
        let first: Option<i64> = run.try_get("", "first_at")?;
        reading.failed_checks = run.try_get("", "n")?;
        reading.down_seconds = first.map(|f| (now_ms - f).max(0) as f64 / 1000.0);
        // The checks stopped reaching the site after it failed (the reconciler no longer
        // sees it running): every round since the first failure counts as failed.
        if let (Some(first), true) = (first, now_ms - last_at > round_ms) {
            let rounds = (now_ms - first) / check_every.num_milliseconds().max(1);
            reading.failed_checks = reading.failed_checks.max(rounds);
        }
    }
    Ok(out)
}

// ----- alerts -----

/// Every alert row, for the evaluation.
pub async fn all_alerts(db: &impl ConnectionTrait) -> Result<Vec<alerts::Model>> {
    Ok(alerts::Entity::find().all(db).await?)
}

/// The caller's alerts (customers: their own sites'), newest first, optionally of one state.
pub async fn list_alerts(
    db: &impl ConnectionTrait,
    caller: &Caller,
    state: Option<&str>,
    page: Page,
) -> Result<Paged<alerts::Model>> {
    let mut q = alerts::Entity::find().scoped(caller);
    if let Some(state) = state {
        if Phase::parse(state).is_none() {
            return Err(Error::invalid("state", "must be one of ok, pending, firing, resolved"));
        }
        q = q.filter(alerts::Column::State.eq(state));
    }
    super::page::fetch(db, q, alerts::Column::Id, page, |a| a.id).await
}

/// The status the state machine remembers of a stored alert.
pub fn status_of(alert: &alerts::Model) -> Status {
    Status {
        phase: Phase::parse(&alert.state).unwrap_or(Phase::Ok),
        severity: alert.severity.as_deref().and_then(Severity::parse),
        pending_since: alert.pending_since,
        clear_since: alert.clear_since,
        fired_at: alert.fired_at,
        resolved_at: alert.resolved_at,
        notified: alert.notified_severity.as_deref().and_then(Severity::parse),
    }
}

/// One alert after an evaluation.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub metric: &'static str,
    pub rule_id: Uuid,
    pub value: Option<f64>,
    pub previous: Option<alerts::Model>,
    pub next: Status,
    pub transition: Option<Transition>,
    /// The timeline line of a transition ("down for 62 s, warning at 60").
    pub detail: String,
    pub now: DateTime<Utc>,
}

/// Stores an evaluated alert; see [`record_round`].
pub async fn record<C: ConnectionTrait + TransactionTrait>(db: &C, e: Evaluated) -> Result<Option<Uuid>> {
    let touched = record_round(db, vec![e], usize::MAX).await?;
    Ok(touched.into_iter().next().map(|t| t.incident_id))
}

/// An incident an evaluation round opened, escalated or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub site_id: Uuid,
    pub metric: &'static str,
    pub incident_id: Uuid,
    /// `fired`, `escalated` or `resolved`.
    pub transition: &'static str,
    /// A silence covered it: the timeline says so and no channel is told.
    pub silenced: bool,
}

/// Stores the alerts an evaluation round changed, in **one** transaction. On `Fired` an
/// incident opens (with its `fired` event), on `Escalated` it becomes critical, on `Resolved` it
/// resolves; each such transition is notified to every enabled channel of the site's customer
/// and of the admins. When at least `group_min` alerts fired in the round (or at least that
/// many resolved), a channel that would get more than one of those notifications gets one
/// grouped notification (`alerts.notify_group`) listing them instead.
pub async fn record_round<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    round: Vec<Evaluated>,
    group_min: usize,
) -> Result<Vec<Touched>> {
    let txn = db.begin().await?;
    let mut touched = Vec::new();
    for e in round {
        let customer_id = e.customer_id;
        if let Some(t) = record_one(&txn, e).await? {
            touched.push((t, customer_id));
        }
    }
    let count = |kind: &str| touched.iter().filter(|(t, _)| !t.silenced && t.transition == kind).count();
    let grouped = |kind: &str| kind != "escalated" && count(kind) >= group_min.max(2);
    // Per channel and transition: the channel's owner and the incidents it is told about.
    type Told = (Option<Uuid>, Vec<Uuid>);
    let mut per_channel: HashMap<(Uuid, &'static str), Told> = HashMap::new();
    let mut channels: HashMap<Uuid, Vec<notification_channels::Model>> = HashMap::new();
    for (t, customer_id) in touched.iter().filter(|(t, _)| !t.silenced) {
        if !channels.contains_key(customer_id) {
            channels.insert(*customer_id, channels_for(&txn, *customer_id).await?);
        }
        for channel in channels.get(customer_id).into_iter().flatten() {
            let entry = per_channel.entry((channel.id, t.transition)).or_insert((channel.customer_id, Vec::new()));
            entry.1.push(t.incident_id);
        }
    }
    let mut keys: Vec<_> = per_channel.keys().copied().collect();
    keys.sort();
    for key in keys {
        let (channel_id, transition) = key;
        let Some((owner, incidents)) = per_channel.remove(&key) else { continue };
        let options = crate::jobs::Options { customer_id: owner, ..Default::default() };
        if grouped(transition) && incidents.len() > 1 {
            let job = NotifyAlertGroup { channel_id, transition: transition.to_owned(), incident_ids: incidents };
            crate::jobs::enqueue_with(&txn, &job, options).await?;
            continue;
        }
        for incident_id in incidents {
            let job = NotifyAlert { incident_id, channel_id, transition: transition.to_owned() };
            crate::jobs::enqueue_with(&txn, &job, options.clone()).await?;
        }
    }
    txn.commit().await?;
    Ok(touched.into_iter().map(|(t, _)| t).collect())
}

/// Stores one evaluated alert and its incident's change within the round's transaction.
async fn record_one(txn: &impl ConnectionTrait, e: Evaluated) -> Result<Option<Touched>> {
    let fingerprint = crate::alerting::fingerprint(e.site_id, e.metric);
    let alert_id = e.previous.as_ref().map_or_else(Uuid::now_v7, |p| p.id);
    let mut active = match &e.previous {
        Some(previous) => alerts::ActiveModel::from(previous.clone()),
        None => alerts::ActiveModel {
            id: Set(alert_id),
            site_id: Set(e.site_id),
            customer_id: Set(e.customer_id),
            metric: Set(e.metric.to_owned()),
            fingerprint: Set(fingerprint.clone()),
            incident_id: Set(None),
            ..Default::default()
        },
    };
    active.rule_id = Set(e.rule_id);
    active.state = Set(e.next.phase.as_str().to_owned());
    active.severity = Set(e.next.severity.map(|s| s.as_str().to_owned()));
    active.value = Set(e.value);
    active.pending_since = Set(e.next.pending_since);
    active.clear_since = Set(e.next.clear_since);
    active.fired_at = Set(e.next.fired_at);
    active.resolved_at = Set(e.next.resolved_at);
    active.notified_severity = Set(e.next.notified.map(|s| s.as_str().to_owned()));
    active.updated_at = Set(e.now);
    let previous_incident = e.previous.as_ref().and_then(|p| p.incident_id);
    let incident_id = match e.transition {
        Some(Transition::Fired(severity)) => {
            let incident = incidents::ActiveModel {
                id: Set(Uuid::now_v7()),
                site_id: Set(e.site_id),
                customer_id: Set(e.customer_id),
                alert_id: Set(alert_id),
                metric: Set(e.metric.to_owned()),
                severity: Set(severity.as_str().to_owned()),
                status: Set("open".into()),
                fingerprint: Set(fingerprint),
                opened_at: Set(e.now),
                acknowledged_at: Set(None),
                acknowledged_by: Set(None),
                resolved_at: Set(None),
            }
            .insert(txn)
            .await?;
            add_event(txn, incident.id, "fired", &e.detail, e.now).await?;
            active.incident_id = Set(Some(incident.id));
            Some(incident.id)
        }
        Some(transition @ (Transition::Escalated | Transition::Resolved)) => match previous_incident {
            Some(id) => match incidents::Entity::find_by_id(id).one(txn).await? {
                Some(incident) => {
                    let mut inc: incidents::ActiveModel = incident.into();
                    if transition == Transition::Resolved {
                        inc.status = Set("resolved".into());
                        inc.resolved_at = Set(Some(e.now));
                    } else {
                        inc.severity = Set(Severity::Critical.as_str().to_owned());
                    }
                    inc.update(txn).await?;
                    add_event(txn, id, transition.as_str(), &e.detail, e.now).await?;
                    Some(id)
                }
                None => None,
            },
            None => None,
        },
        None => None,
    };
    if e.previous.is_some() {
        active.update(txn).await?;
    } else {
        active.insert(txn).await?;
    }
    let Some((incident_id, t)) = incident_id.zip(e.transition) else { return Ok(None) };
    let transition = t.as_str();
    // A silence holds the notifications back; the incident records that instead.
    let silence = super::silences::covering(txn, e.site_id, e.customer_id, e.metric, e.now).await?;
    if let Some(silence) = &silence {
        add_event(txn, incident_id, "silenced", &super::silences::timeline_detail(silence, transition), e.now).await?;
    }
    Ok(Some(Touched { site_id: e.site_id, metric: e.metric, incident_id, transition, silenced: silence.is_some() }))
}

// ----- incidents -----

/// Appends a line to an incident's timeline.
pub async fn add_event(
    db: &impl ConnectionTrait,
    incident_id: Uuid,
    kind: &str,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<incident_events::Model> {
    Ok(incident_events::ActiveModel {
        id: Set(Uuid::now_v7()),
        incident_id: Set(incident_id),
        at: Set(at),
        kind: Set(kind.to_owned()),
        detail: Set(detail.chars().take(1000).collect()),
    }
    .insert(db)
    .await?)
}

/// The caller's incidents, newest first, optionally of one status.
pub async fn list_incidents(
    db: &impl ConnectionTrait,
    caller: &Caller,
    status: Option<&str>,
    page: Page,
) -> Result<Paged<incidents::Model>> {
    let mut q = incidents::Entity::find().scoped(caller);
    if let Some(status) = status {
        if !["open", "acknowledged", "resolved"].contains(&status) {
            return Err(Error::invalid("status", "must be one of open, acknowledged, resolved"));
        }
        q = q.filter(incidents::Column::Status.eq(status));
    }
    super::page::fetch(db, q, incidents::Column::Id, page, |i| i.id).await
}

/// One incident with its timeline, oldest event first. Another tenant's is not found.
pub async fn incident(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: Uuid,
) -> Result<(incidents::Model, Vec<incident_events::Model>)> {
    let incident =
        incidents::Entity::find_by_id(id).scoped(caller).one(db).await?.ok_or(Error::NotFound("incident"))?;
    let events = incident_events::Entity::find()
        .filter(incident_events::Column::IncidentId.eq(id))
        .order_by_asc(incident_events::Column::At)
        .order_by_asc(incident_events::Column::Id)
        .all(db)
        .await?;
    Ok((incident, events))
}

/// Marks an open incident acknowledged by the caller (a no-op on one already acknowledged or
/// resolved), with a timeline line and an audit entry.
pub async fn acknowledge<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
) -> Result<incidents::Model> {
    let txn = db.begin().await?;
    let incident =
        incidents::Entity::find_by_id(id).scoped(caller).one(&txn).await?.ok_or(Error::NotFound("incident"))?;
    if incident.status != "open" {
        return Ok(incident);
    }
    let now = super::now();
    let mut active: incidents::ActiveModel = incident.clone().into();
    active.status = Set("acknowledged".into());
    active.acknowledged_at = Set(Some(now));
    active.acknowledged_by = Set(Some(caller.actor.clone()));
    let updated = active.update(&txn).await?;
    add_event(&txn, id, "acknowledged", &format!("acknowledged by {}", caller.actor), now).await?;
    audit::record(
        &txn,
        caller,
        Event::new("incident.acknowledge", "incident", id).customer(Some(incident.customer_id)),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// An incident by id, for Berth's own jobs.
pub async fn incident_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<incidents::Model>> {
    Ok(incidents::Entity::find_by_id(id).one(db).await?)
}

/// Whether an incident's timeline already has a line of `kind`.
pub async fn has_event(db: &impl ConnectionTrait, incident_id: Uuid, kind: &str) -> Result<bool> {
    Ok(incident_events::Entity::find()
        .filter(incident_events::Column::IncidentId.eq(incident_id))
        .filter(incident_events::Column::Kind.eq(kind))
        .one(db)
        .await?
        .is_some())
}

/// The names and customers of the caller's sites among `ids` (one query), for pages that list
/// alerts and incidents. Sites the caller may not see are left out.
pub async fn site_names(
    db: &impl ConnectionTrait,
    caller: &Caller,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, (String, Uuid)>> {
    use crate::entities::sites;
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(access::sites(caller)
        .filter(sites::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, (s.name, s.customer_id)))
        .collect())
}

// ----- channels -----

/// A channel to create.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Admins: the customer it belongs to, `None` for an admin channel. Customers: ignored
    /// (always their own).
    pub customer_id: Option<Uuid>,
    pub kind: String,
    pub target: String,
    pub enabled: bool,
    pub allow_private: bool,
}

/// Creates a notification channel. An e-mail target must be an address; a webhook target (kind
/// `webhook`, `slack` or `discord`: the same URL, three body shapes) an http(s) URL whose host does not resolve to a loopback, private, link-local or site network
/// address, unless an administrator set `allow_private`.
pub async fn create_channel<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    new: NewChannel,
    site_subnets: &[IpNet],
) -> Result<notification_channels::Model> {
    let mut fields = Fields::new();
    let customer_id = match caller.own_customer() {
        Some(own) => Some(own),
        None => new.customer_id,
    };
    if new.allow_private && !caller.is_admin() {
        fields.check::<()>("allow_private", Err("only an administrator may allow private addresses".into()));
    }
    let target = match new.kind.as_str() {
        "email" => fields.check("target", validate::email(&new.target)),
        "webhook" | "slack" | "discord" => {
            let checked = crate::net::check_webhook_url(&new.target, new.allow_private, site_subnets).await;
            fields.check("target", checked.map(|t| t.url.to_string()))
        }
        _ => {
            fields.check::<()>("kind", Err("must be email, webhook, slack or discord".into()));
            None
        }
    };
    fields.finish()?;
    let txn = db.begin().await?;
    if let (Some(c), true) = (customer_id, caller.is_admin()) {
        access::customers(caller)
            .filter(crate::entities::customers::Column::Id.eq(c))
            .one(&txn)
            .await?
            .ok_or(Error::NotFound("customer"))?;
    }
    let model = notification_channels::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(customer_id),
        kind: Set(new.kind.clone()),
        target: Set(target.unwrap_or_default()),
        enabled: Set(new.enabled),
        allow_private: Set(new.allow_private),
        created_at: Set(super::now()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        Event::new("notification_channel.create", "notification_channel", model.id)
            .customer(customer_id)
            .details(json!({"kind": model.kind, "target": model.target, "allow_private": model.allow_private})),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// The caller's channels (admins: all of them).
pub async fn list_channels(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<notification_channels::Model>> {
    Ok(notification_channels::Entity::find()
        .scoped(caller)
        .order_by_asc(notification_channels::Column::Id)
        .all(db)
        .await?)
}

/// Deletes one of the caller's channels; another tenant's is not found.
pub async fn delete_channel<C: ConnectionTrait + TransactionTrait>(db: &C, caller: &Caller, id: Uuid) -> Result<()> {
    let txn = db.begin().await?;
    let channel = notification_channels::Entity::find_by_id(id)
        .scoped(caller)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("notification channel"))?;
    notification_channels::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        caller,
        Event::new("notification_channel.delete", "notification_channel", id)
            .customer(channel.customer_id)
            .details(json!({"kind": channel.kind, "target": channel.target})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Queues a test notice to one of the caller's channels (another tenant's is not found),
/// audited. Pressing twice while one is queued sends one.
pub async fn test_channel<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
) -> Result<notification_channels::Model> {
    let txn = db.begin().await?;
    let channel = notification_channels::Entity::find_by_id(id)
        .scoped(caller)
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("notification channel"))?;
    let job = crate::jobs::alerts::TestNotification { channel_id: id, requested_by: caller.actor.clone() };
    crate::jobs::enqueue_with(
        &txn,
        &job,
        crate::jobs::Options { customer_id: channel.customer_id, ..Default::default() },
    )
    .await?;
    audit::record(
        &txn,
        caller,
        Event::new("notification_channel.test", "notification_channel", id)
            .customer(channel.customer_id)
            .details(json!({"kind": channel.kind, "target": channel.target})),
    )
    .await?;
    txn.commit().await?;
    Ok(channel)
}

/// The enabled channels a customer's incidents go to: the customer's own and the admins'.
pub async fn channels_for(db: &impl ConnectionTrait, customer_id: Uuid) -> Result<Vec<notification_channels::Model>> {
    Ok(notification_channels::Entity::find()
        .filter(notification_channels::Column::Enabled.eq(true))
        .filter(
            Condition::any()
                .add(notification_channels::Column::CustomerId.eq(customer_id))
                .add(notification_channels::Column::CustomerId.is_null()),
        )
        .all(db)
        .await?)
}

/// A channel by id, for Berth's own jobs.
pub async fn channel_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<notification_channels::Model>> {
    Ok(notification_channels::Entity::find_by_id(id).one(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: &str, scope: &str, plan: Option<&str>, site: Option<Uuid>) -> alert_rules::Model {
        alert_rules::Model {
            id: Uuid::now_v7(),
            metric: metric.into(),
            scope: scope.into(),
            plan_id: plan.map(Into::into),
            site_id: site,
            warning: 1.0,
            critical: 2.0,
            for_seconds: 0,
            enabled: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_most_specific_rule_applies() {
        let (site, other) = (Uuid::now_v7(), Uuid::now_v7());
        let rules = vec![
            rule("cpu", "global", None, None),
            rule("cpu", "plan", Some("business"), None),
            rule("cpu", "site", None, Some(site)),
            rule("down", "global", None, None),
        ];
        assert_eq!(rule_for(&rules, "cpu", site, Some("business")).map(|r| r.id), Some(rules[2].id));
        assert_eq!(rule_for(&rules, "cpu", other, Some("business")).map(|r| r.id), Some(rules[1].id));
        assert_eq!(rule_for(&rules, "cpu", other, Some("starter")).map(|r| r.id), Some(rules[0].id));
        assert_eq!(rule_for(&rules, "down", site, Some("business")).map(|r| r.id), Some(rules[3].id));
        assert!(rule_for(&rules, "memory", site, None).is_none());
    }
}
