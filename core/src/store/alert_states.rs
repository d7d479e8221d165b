//! Firing and pending alerts as the alerts page, the alerts API and the dashboard read them:
//! for administrators from the Redis cache for 30 seconds ([`crate::cache::ALERT_STATES_KEY`]),
//! for customers (and without Redis) straight from the database, scoped as always.
//!
//! The cached list holds every customer's alerts, so it is read only after the caller was found
//! to be an administrator. Whatever changes an alert, an incident or a silence calls
//! [`invalidate`] after its commit: the evaluation round that stored a change, acknowledging an
//! incident, creating or expiring a silence. The dashboard's aggregates go with it.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::page::{Page, Paged, DEFAULT_LIMIT, MAX_LIMIT};
use crate::access::Caller;
use crate::cache::{Cache, Fresh, ALERT_STATES_KEY, ALERT_STATES_TTL, DASHBOARD_KEY};
use crate::entities::alerts;
use crate::error::Result;

/// The states kept in the cache; `ok` and `resolved` are read from the database.
const ACTIVE: [&str; 2] = ["firing", "pending"];

/// The caller's alerts in `state` (all states when `None`), newest first, one page: the same
/// answer as [`super::alerts::list_alerts`], from the cache for an administrator asking for
/// firing or pending alerts.
pub async fn list(
    db: &impl ConnectionTrait,
    cache: &Cache,
    caller: &Caller,
    state: Option<&str>,
    page: Page,
) -> Result<Paged<alerts::Model>> {
    let state = match state {
        Some(s) if caller.is_admin() && cache.is_on() && ACTIVE.contains(&s) => s,
        _ => return super::alerts::list_alerts(db, caller, state, page).await,
    };
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
    let mut items: Vec<alerts::Model> = active(db, cache, caller)
        .await?
        .into_iter()
        .filter(|a| a.state == state && page.cursor.is_none_or(|c| a.id < c))
        .take(limit + 1)
        .collect();
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Paged { items, next_cursor })
}

/// Every firing and pending alert the caller may see, newest first.
pub async fn active(db: &impl ConnectionTrait, cache: &Cache, caller: &Caller) -> Result<Vec<alerts::Model>> {
    // Tenancy first: only an administrator's read may touch the list of every customer.
    if !caller.is_admin() {
        return read(db, caller).await;
    }
    let ticket = match cache.get_fresh::<Vec<Cached>>(ALERT_STATES_KEY).await {
        Fresh::Hit(rows) => return Ok(rows.into_iter().map(Into::into).collect()),
        Fresh::Miss(ticket) => Some(ticket),
        Fresh::Off => None,
    };
    let found = read(db, caller).await?;
    if let Some(ticket) = ticket {
        let rows: Vec<Cached> = found.iter().cloned().map(Into::into).collect();
        cache.put_fresh(ALERT_STATES_KEY, ticket, &rows, ALERT_STATES_TTL).await;
    }
    Ok(found)
}

/// Drops the cached alert states and dashboard aggregates; called after a change committed.
pub async fn invalidate(cache: &Cache) {
    cache.invalidate(&[ALERT_STATES_KEY, DASHBOARD_KEY]).await;
}

async fn read(db: &impl ConnectionTrait, caller: &Caller) -> Result<Vec<alerts::Model>> {
    use crate::access::Scoped;
    Ok(alerts::Entity::find()
        .scoped(caller)
        .filter(alerts::Column::State.is_in(ACTIVE))
        .order_by_desc(alerts::Column::Id)
        .all(db)
        .await?)
}

/// An alert row as the cache holds it (the entity itself has no serde form, on purpose).
#[derive(Serialize, Deserialize)]
struct Cached {
    id: Uuid,
    site_id: Uuid,
    customer_id: Uuid,
    metric: String,
    rule_id: Uuid,
    state: String,
    severity: Option<String>,
    value: Option<f64>,
    pending_since: Option<DateTime<Utc>>,
    clear_since: Option<DateTime<Utc>>,
    fired_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    fingerprint: String,
    incident_id: Option<Uuid>,
    notified_severity: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<alerts::Model> for Cached {
    fn from(a: alerts::Model) -> Self {
        Self {
            id: a.id,
            site_id: a.site_id,
            customer_id: a.customer_id,
            metric: a.metric,
            rule_id: a.rule_id,
            state: a.state,
            severity: a.severity,
            value: a.value,
            pending_since: a.pending_since,
            clear_since: a.clear_since,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            fingerprint: a.fingerprint,
            incident_id: a.incident_id,
            notified_severity: a.notified_severity,
            updated_at: a.updated_at,
        }
    }
}

impl From<Cached> for alerts::Model {
    fn from(c: Cached) -> Self {
        Self {
            id: c.id,
            site_id: c.site_id,
            customer_id: c.customer_id,
            metric: c.metric,
            rule_id: c.rule_id,
            state: c.state,
            severity: c.severity,
            value: c.value,
            pending_since: c.pending_since,
            clear_since: c.clear_since,
            fired_at: c.fired_at,
            resolved_at: c.resolved_at,
            fingerprint: c.fingerprint,
            incident_id: c.incident_id,
            notified_severity: c.notified_severity,
            updated_at: c.updated_at,
        }
    }
}
