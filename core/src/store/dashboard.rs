//! What the admin dashboard reads about monitoring: how many alerts fire and how many sites are
//! down, and the sites using the most CPU and memory by their latest sample — one query each,
//! never one per site. [`summary`] gathers them for the dashboard, from the Redis cache for a
//! minute ([`crate::cache::DASHBOARD_KEY`]) when it is configured.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::metrics::placeholders;
use crate::access::{Caller, Scoped};
use crate::cache::{Cache, Fresh, DASHBOARD_KEY, DASHBOARD_TTL};
use crate::entities::alerts;
use crate::error::Result;

/// How many sites each "top sites" list of the dashboard shows.
pub const TOP_SITES: u64 = 5;

/// The dashboard's monitoring aggregates over every customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Firing alerts.
    pub firing: u64,
    /// Sites whose down alert fires.
    pub down: u64,
    pub top_cpu: Vec<TopSite>,
    pub top_memory: Vec<TopSite>,
}

/// The dashboard's aggregates, for administrators only (they span every customer): from the
/// cache when a fresh copy is there (at most a minute old, and never older than the last alert
/// change, see [`super::alert_states::invalidate`]), else four queries.
pub async fn summary(db: &impl ConnectionTrait, cache: &Cache, caller: &Caller) -> Result<Summary> {
    // Checked before the cache is read: the cached value holds every customer's sites.
    caller.require_admin()?;
    let ticket = match cache.get_fresh::<Summary>(DASHBOARD_KEY).await {
        Fresh::Hit(summary) => return Ok(summary),
        Fresh::Miss(ticket) => Some(ticket),
        Fresh::Off => None,
    };
    let (firing, down) = firing_counts(db, caller).await?;
    let summary = Summary {
        firing,
        down,
        top_cpu: top_sites(db, caller, TopBy::Cpu, TOP_SITES).await?,
        top_memory: top_sites(db, caller, TopBy::Memory, TOP_SITES).await?,
    };
    if let Some(ticket) = ticket {
        cache.put_fresh(DASHBOARD_KEY, ticket, &summary, DASHBOARD_TTL).await;
    }
    Ok(summary)
}

/// A sample older than this is not "current" (as for the alert evaluation).
const SAMPLE_FRESH_MS: i64 = 120_000;

/// Firing alerts, and among them the sites whose down alert fires.
pub async fn firing_counts(db: &impl ConnectionTrait, caller: &Caller) -> Result<(u64, u64)> {
    let firing = alerts::Entity::find().scoped(caller).filter(alerts::Column::State.eq("firing"));
    let all = firing.clone().count(db).await?;
    let down = firing.filter(alerts::Column::Metric.eq("down")).count(db).await?;
    Ok((all, down))
}

/// What to rank sites by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Cpu,
    Memory,
}

/// One site's latest sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopSite {
    pub site_id: Uuid,
    pub name: String,
    pub customer_id: Uuid,
    /// % of one core.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
}

/// The `limit` sites (admins: all; customers: their own) with the highest CPU or memory in
/// their latest sample of the last two minutes, highest first. One query.
pub async fn top_sites(db: &impl ConnectionTrait, caller: &Caller, by: TopBy, limit: u64) -> Result<Vec<TopSite>> {
    let backend = db.get_database_backend();
    let since = chrono::Utc::now().timestamp_millis() - SAMPLE_FRESH_MS;
    let order = match by {
        TopBy::Cpu => "COALESCE(s.cpu_percent, -1) DESC",
        TopBy::Memory => "s.memory_bytes DESC",
    };
    let (scope, mut values): (&str, Vec<sea_orm::Value>) = match caller.own_customer() {
        Some(c) => ("AND s.customer_id = $3", vec![since.into(), since.into(), c.into()]),
        None => ("", vec![since.into(), since.into()]),
    };
    let limit_at = values.len() + 1;
    values.push((limit.min(100) as i64).into());
    let sql = format!(
        "SELECT s.site_id, st.name, s.customer_id, s.cpu_percent, s.memory_bytes, s.memory_limit_bytes \
         FROM site_samples s \
         JOIN (SELECT site_id, MAX(at_ms) AS at_ms FROM site_samples WHERE at_ms >= $1 GROUP BY site_id) l \
           ON s.site_id = l.site_id AND s.at_ms = l.at_ms \
         JOIN sites st ON st.id = s.site_id \
         WHERE s.at_ms >= $2 {scope} ORDER BY {order}, s.site_id LIMIT ${limit_at}"
    );
    let rows = db.query_all(Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(TopSite {
            site_id: row.try_get("", "site_id")?,
            name: row.try_get("", "name")?,
            customer_id: row.try_get("", "customer_id")?,
            cpu_percent: row.try_get("", "cpu_percent")?,
            memory_bytes: row.try_get("", "memory_bytes")?,
            memory_limit_bytes: row.try_get("", "memory_limit_bytes")?,
        });
    }
    Ok(out)
}
