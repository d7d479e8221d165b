//! The worker's writes to the `jobs` table. Every write after the claim names `(id, lease_id)`
//! and `state = 'running'`: the lease id is the fencing token, so a worker whose lease expired
//! and was handed to another cannot complete, fail, extend or release the job any more.
//!
//! PostgreSQL takes the hot paths (claim, complete, heartbeat) as single set-based statements
//! through sqlx (`FOR UPDATE SKIP LOCKED`, `UNNEST` of id/lease pairs). SQLite has one writer
//! and, in Berth, one process: the same semantics come from short transactions on its single
//! connection.

use std::time::Duration;

use berth_core::entities::jobs::{self, JobState};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

/// A job this worker now holds a lease on.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    pub customer_id: Option<Uuid>,
    pub flow_run_id: Option<Uuid>,
    pub lease_id: Uuid,
    /// When the job became runnable: its enqueue time or retry time.
    pub run_at: DateTime<Utc>,
}

fn lease_until(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}

fn is_pg(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// Claims up to `limit` runnable jobs of `queue`, highest priority and oldest first, under one new
/// lease id.
pub async fn claim(
    db: &DatabaseConnection,
    queue: &str,
    limit: usize,
    worker: &str,
    lease: Duration,
) -> Result<Vec<Claimed>, sea_orm::DbErr> {
    let now = Utc::now();
    let lease_id = Uuid::now_v7();
    let until = lease_until(now, lease);
    if is_pg(db) {
        let query = sqlx::query_as::<_, PgClaimRow>(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_id = $3, lease_expires_at = $4, \
                 locked_by = $5, started_at = $6, updated_at = $6 \
             WHERE id IN (SELECT id FROM jobs WHERE queue = $1 AND state = 'queued' AND run_at <= $6 \
                          ORDER BY priority DESC, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, payload, attempts, max_attempts, customer_id, flow_run_id, run_at",
        )
        .bind(queue)
        .bind(limit as i64)
        .bind(lease_id)
        .bind(until)
        .bind(worker)
        .bind(now);
        let mut tx = relaxed(db).await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(sqlx_err)?;
        tx.commit().await.map_err(sqlx_err)?;
        return Ok(rows.into_iter().map(|r| into_claimed(r, lease_id)).collect());
    }
    let txn = db.begin().await?;
    let found = jobs::Entity::find()
        .filter(jobs::Column::Queue.eq(queue))
        .filter(jobs::Column::State.eq(JobState::Queued))
        .filter(jobs::Column::RunAt.lte(now))
        .order_by_desc(jobs::Column::Priority)
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .limit(limit as u64)
        .all(&txn)
        .await?;
    if found.is_empty() {
        txn.commit().await?;
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = found.iter().map(|j| j.id).collect();
    jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Running))
        .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).add(1))
        .col_expr(jobs::Column::LeaseId, Expr::value(lease_id))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(until))
        .col_expr(jobs::Column::LockedBy, Expr::value(worker))
        .col_expr(jobs::Column::StartedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.is_in(ids))
        .filter(jobs::Column::State.eq(JobState::Queued))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(found
        .into_iter()
        .map(|j| Claimed {
            id: j.id,
            kind: j.kind,
            payload: j.payload,
            attempts: j.attempts + 1,
            max_attempts: j.max_attempts,
            customer_id: j.customer_id,
            flow_run_id: j.flow_run_id,
            lease_id,
            run_at: j.run_at,
        })
        .collect())
}

/// `RETURNING id, kind, payload, attempts, max_attempts, customer_id, flow_run_id, run_at`.
type PgClaimRow = (Uuid, String, Value, i32, i32, Option<Uuid>, Option<Uuid>, DateTime<Utc>);

fn into_claimed(r: PgClaimRow, lease_id: Uuid) -> Claimed {
    let (id, kind, payload, attempts, max_attempts, customer_id, flow_run_id, run_at) = r;
    Claimed { id, kind, payload, attempts, max_attempts, customer_id, flow_run_id, lease_id, run_at }
}

/// A PostgreSQL transaction that does not wait for its commit to reach the disk.
///
/// Used for the worker's own bookkeeping only (claim, heartbeat, complete), never for enqueues,
/// which commit with the caller's state change. If PostgreSQL itself crashes, the last few
/// milliseconds of such commits can be lost: a lost claim or heartbeat leaves the job queued or
/// its lease to expire, a lost completion runs the job again — all within the at-least-once
/// guarantee jobs are written for. In exchange a claim or completion costs no WAL flush, which is
/// most of the queue's throughput on an ordinary disk.
async fn relaxed(db: &DatabaseConnection) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sea_orm::DbErr> {
    let mut tx = db.get_postgres_connection_pool().begin().await.map_err(sqlx_err)?;
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await.map_err(sqlx_err)?;
    Ok(tx)
}

fn sqlx_err(e: sqlx::Error) -> sea_orm::DbErr {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)
        }
        other => sea_orm::DbErr::Custom(other.to_string()),
    }
}

/// Marks jobs done. Returns the pairs whose lease was no longer theirs (rejected by the fence).
pub async fn complete(db: &DatabaseConnection, held: &[(Uuid, Uuid)]) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let now = Utc::now();
    let sql = "UPDATE jobs AS j SET state = 'done', finished_at = $3, updated_at = $3, lease_expires_at = NULL \
               FROM UNNEST($1::uuid[], $2::uuid[]) AS c(id, lease) \
               WHERE j.id = c.id AND j.lease_id = c.lease AND j.state = 'running' RETURNING j.id";
    let done = set_by_pairs(db, held, sql, now, |q| {
        q.col_expr(jobs::Column::State, Expr::value(JobState::Done))
            .col_expr(jobs::Column::FinishedAt, Expr::value(now))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
    })
    .await?;
    Ok(held.iter().filter(|(id, _)| !done.contains(id)).map(|(id, _)| *id).collect())
}

/// Extends the leases of jobs still held. Returns the ids whose lease was lost.
pub async fn heartbeat(
    db: &DatabaseConnection,
    held: &[(Uuid, Uuid)],
    lease: Duration,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let until = lease_until(Utc::now(), lease);
    let sql = "UPDATE jobs AS j SET lease_expires_at = $3 FROM UNNEST($1::uuid[], $2::uuid[]) AS c(id, lease) \
               WHERE j.id = c.id AND j.lease_id = c.lease AND j.state = 'running' RETURNING j.id";
    let kept =
        set_by_pairs(db, held, sql, until, |q| q.col_expr(jobs::Column::LeaseExpiresAt, Expr::value(until))).await?;
    Ok(held.iter().filter(|(id, _)| !kept.contains(id)).map(|(id, _)| *id).collect())
}

/// One fenced update of many `(id, lease)` pairs; returns the ids it changed.
async fn set_by_pairs(
    db: &DatabaseConnection,
    held: &[(Uuid, Uuid)],
    pg_sql: &str,
    at: DateTime<Utc>,
    sets: impl Fn(sea_orm::UpdateMany<jobs::Entity>) -> sea_orm::UpdateMany<jobs::Entity>,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    if held.is_empty() {
        return Ok(vec![]);
    }
    if is_pg(db) {
        let ids: Vec<Uuid> = held.iter().map(|p| p.0).collect();
        let leases: Vec<Uuid> = held.iter().map(|p| p.1).collect();
        let mut tx = relaxed(db).await?;
        let rows: Vec<(Uuid,)> =
            sqlx::query_as(pg_sql).bind(ids).bind(leases).bind(at).fetch_all(&mut *tx).await.map_err(sqlx_err)?;
        tx.commit().await.map_err(sqlx_err)?;
        return Ok(rows.into_iter().map(|r| r.0).collect());
    }
    let txn = db.begin().await?;
    let mut changed = Vec::new();
    for (id, lease) in held {
        let res = sets(jobs::Entity::update_many()).filter(owned(*id, *lease)).exec(&txn).await?;
        if res.rows_affected == 1 {
            changed.push(*id);
        }
    }
    txn.commit().await?;
    Ok(changed)
}

/// The fence: the row is this job, still running under this lease.
pub fn owned(id: Uuid, lease: Uuid) -> Condition {
    Condition::all()
        .add(jobs::Column::Id.eq(id))
        .add(jobs::Column::LeaseId.eq(lease))
        .add(jobs::Column::State.eq(JobState::Running))
}

/// Checks, inside `txn`, that this worker still holds the job's lease. On PostgreSQL the update
/// also locks the row until `txn` ends, so nobody can take the job over between this check and
/// the commit: writes made in the same transaction are fenced too (flow steps use this).
pub async fn fence(txn: &impl ConnectionTrait, id: Uuid, lease: Uuid) -> Result<bool, sea_orm::DbErr> {
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(owned(id, lease))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What became of a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Queued again, not before this instant.
    Retry(DateTime<Utc>),
    /// Out of attempts.
    Dead,
    /// The lease was no longer ours: nothing written.
    LostLease,
}

/// Records a failed run: back to the queue after `delay`, or dead after the last attempt.
/// A dead flow driver takes its flow run down with it, in the same transaction.
pub async fn fail(
    db: &DatabaseConnection,
    job: &Claimed,
    error: &str,
    delay: Duration,
) -> Result<Failed, sea_orm::DbErr> {
    let now = Utc::now();
    let error = truncate(error);
    let txn = db.begin().await?;
    let outcome = if job.attempts >= job.max_attempts {
        let res = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Dead))
            .col_expr(jobs::Column::LastError, Expr::value(error.clone()))
            .col_expr(jobs::Column::FinishedAt, Expr::value(now))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(owned(job.id, job.lease_id))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            if let Some(run) = job.flow_run_id {
                crate::flows::driver::mark_failed(&txn, run, &error).await?;
            }
            Failed::Dead
        } else {
            Failed::LostLease
        }
    } else {
        let at = lease_until(now, delay);
        let res = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(JobState::Queued))
            .col_expr(jobs::Column::LastError, Expr::value(error))
            .col_expr(jobs::Column::RunAt, Expr::value(at))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .col_expr(jobs::Column::LeaseId, Expr::value(Option::<Uuid>::None))
            .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(owned(job.id, job.lease_id))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            Failed::Retry(at)
        } else {
            Failed::LostLease
        }
    };
    txn.commit().await?;
    Ok(outcome)
}

/// Gives a claimed job back to its queue without counting the attempt (graceful shutdown).
pub async fn release(db: &DatabaseConnection, id: Uuid, lease: Uuid) -> Result<bool, sea_orm::DbErr> {
    let now = Utc::now();
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Queued))
        .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).sub(1))
        .col_expr(jobs::Column::RunAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(owned(id, lease))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

pub const LEASE_EXPIRED: &str = "lease expired: the worker stopped heartbeating (crashed, killed or paused)";

/// Hands jobs whose lease expired back to the queue (or to the dead, when that was their last
/// attempt), and fails the flow runs whose driver died that way. Returns how many jobs moved.
/// Safe to run from every worker at once: each statement re-checks the expiry on the row.
pub async fn reap(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let now = Utc::now();
    let expired =
        || Condition::all().add(jobs::Column::State.eq(JobState::Running)).add(jobs::Column::LeaseExpiresAt.lt(now));
    let txn = db.begin().await?;
    let dead = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Dead))
        .col_expr(jobs::Column::LastError, Expr::value(LEASE_EXPIRED))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(expired())
        .filter(Expr::col(jobs::Column::Attempts).gte(Expr::col(jobs::Column::MaxAttempts)))
        .exec(&txn)
        .await?
        .rows_affected;
    let requeued = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Queued))
        .col_expr(jobs::Column::LastError, Expr::value(LEASE_EXPIRED))
        .col_expr(jobs::Column::RunAt, Expr::value(now))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .col_expr(jobs::Column::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(expired())
        .exec(&txn)
        .await?
        .rows_affected;
    if dead > 0 {
        crate::flows::driver::fail_orphaned_runs(&txn).await?;
    }
    if requeued > 0 {
        let queues: Vec<String> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Queue)
            .distinct()
            .filter(jobs::Column::State.eq(JobState::Queued))
            .filter(jobs::Column::LastError.eq(LEASE_EXPIRED))
            .filter(jobs::Column::UpdatedAt.eq(now))
            .into_tuple()
            .all(&txn)
            .await?;
        berth_core::store::jobs::notify(&txn, &queues).await.map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    }
    txn.commit().await?;
    Ok(dead + requeued)
}

/// Queue depth by queue and state, for metrics.
pub async fn depth(db: &DatabaseConnection) -> Result<Vec<(String, String, i64)>, sea_orm::DbErr> {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT queue, state, COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running', 'dead') \
             GROUP BY queue, state"
                .to_owned(),
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push((row.try_get("", "queue")?, row.try_get("", "state")?, row.try_get("", "n")?));
    }
    Ok(out)
}

/// Errors are kept for people to read; a multi-megabyte panic message is not.
fn truncate(error: &str) -> String {
    const MAX: usize = 4000;
    if error.len() <= MAX {
        return error.to_owned();
    }
    let mut end = MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}
