//! Integrity checks of customers' backup repositories (`backup.check`): recording each run,
//! the admin-only list, and which repositories' latest check failed (what the `backup_check`
//! alert reads).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter, Statement};
use uuid::Uuid;

use super::page::{self, Page, Paged};
use crate::access::{self, Caller};
use crate::entities::backup_checks;
use crate::error::Result;

/// What one check run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub customer_id: Uuid,
    /// `part n/7` or `all`.
    pub read_data: String,
    pub started_at: DateTime<Utc>,
    /// `None`: the repository checked clean.
    pub error: Option<String>,
}

/// Records one check of a customer's repository.
pub async fn record(db: &impl ConnectionTrait, outcome: Outcome) -> Result<backup_checks::Model> {
    Ok(backup_checks::ActiveModel {
        id: Set(Uuid::now_v7()),
        customer_id: Set(outcome.customer_id),
        read_data: Set(outcome.read_data),
        ok: Set(outcome.error.is_none()),
        error: Set(outcome.error.map(|e| super::backups::shorten(&e, 2000))),
        started_at: Set(outcome.started_at),
        finished_at: Set(super::now()),
    }
    .insert(db)
    .await?)
}

/// The checks, newest first (admins only), optionally of one customer.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    customer_id: Option<Uuid>,
    page: Page,
) -> Result<Paged<backup_checks::Model>> {
    caller.require_admin()?;
    let mut q = access::backup_checks(caller);
    if let Some(customer) = customer_id {
        q = q.filter(backup_checks::Column::CustomerId.eq(customer));
    }
    page::fetch(db, q, backup_checks::Column::Id, page, |c| c.id).await
}

/// How long the history of checks is kept; each repository's newest check is kept whatever
/// its age (it is what the `backup_check` alert and the next run's full read go by).
pub const KEEP_DAYS: i64 = 90;

/// Deletes checks that started before `before`, except each customer's newest. Returns how
/// many went.
pub async fn prune(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64> {
    let backend = db.get_database_backend();
    let sql = "DELETE FROM backup_checks WHERE started_at < $1 AND EXISTS (SELECT 1 FROM backup_checks newer \
               WHERE newer.customer_id = backup_checks.customer_id AND newer.started_at > backup_checks.started_at)";
    let sql = super::metrics::placeholders(backend, sql);
    let res = db.execute(Statement::from_sql_and_values(backend, sql, [before.into()])).await?;
    Ok(res.rows_affected())
}

/// The customers whose most recent check failed: a later clean check clears it.
pub async fn failing_customers(db: &impl ConnectionTrait) -> Result<HashSet<Uuid>> {
    let sql = "SELECT c.customer_id FROM backup_checks c \
               WHERE c.ok = false AND NOT EXISTS (SELECT 1 FROM backup_checks d \
               WHERE d.customer_id = c.customer_id AND d.started_at > c.started_at)";
    let rows = db.query_all(Statement::from_string(db.get_database_backend(), sql.to_owned())).await?;
    rows.iter().map(|r| Ok(r.try_get::<Uuid>("", "customer_id")?)).collect()
}
