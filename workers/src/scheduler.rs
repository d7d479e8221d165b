//! Cron schedules. A schedule only enqueues a de-duplicated job; the work is the job's.
//!
//! **One leader.** On PostgreSQL the scheduler that holds a session advisory lock fires; the
//! others wait and take over within a second if its connection goes away. On SQLite the single
//! process is the leader. Beyond the lock, each fire is a compare-and-set on the schedule's
//! `last_tick` in the same transaction as the enqueue, so even two leaders could not fire one
//! tick twice.
//!
//! **Missed runs.** A schedule fires at most once per check for its latest due tick: after
//! downtime that spanned several ticks it fires once on catch-up, not once per missed tick. A
//! schedule seen for the first time starts from the current tick without firing.

use std::sync::Arc;
use std::time::Duration;

use berth_core::entities::job_schedules;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    TransactionTrait,
};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::watch;

use berth_core::jobs::{Job, Options};

use crate::queue::Registry;

/// Any fixed number, the same in every Berth process.
const LEADER_LOCK: i64 = 0x4265_7274_6853_6368; // "BerthSch"

/// A schedule defined in code; written to `job_schedules` at start so its last tick persists.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub name: &'static str,
    pub cron: String,
    pub kind: &'static str,
    pub payload: Value,
}

impl Builtin {
    /// Every tick of `cron` enqueues `job` (de-duplicated: one waiting run per schedule).
    pub fn new<J: Job>(name: &'static str, cron: impl Into<String>, job: &J) -> Self {
        // A job's payload is a plain serde struct: serialising it cannot fail in practice, and
        // if it ever did the schedule would fire with an empty payload that the job refuses.
        let payload = serde_json::to_value(job).unwrap_or(Value::Null);
        Self { name, cron: cron.into(), kind: J::NAME, payload }
    }
}

/// The latest tick of a schedule at or before now (one definition, shared with the backup
/// schedules of plans and sites).
pub use berth_core::schedule::latest_tick;

pub struct Scheduler {
    db: DatabaseConnection,
    registry: Arc<Registry>,
    builtins: Vec<Builtin>,
    every: Duration,
}

impl Scheduler {
    pub fn new(db: DatabaseConnection, registry: Arc<Registry>, builtins: Vec<Builtin>) -> Self {
        Self { db, registry, builtins, every: Duration::from_millis(500) }
    }

    /// Writes the built-in schedules (code is their source of truth; `enabled` and `last_tick`
    /// are kept).
    pub async fn install_builtins(&self) -> Result<(), sea_orm::DbErr> {
        let now = Utc::now();
        for b in &self.builtins {
            let row = job_schedules::ActiveModel {
                name: Set(b.name.to_owned()),
                cron: Set(b.cron.clone()),
                kind: Set(b.kind.to_owned()),
                payload: Set(b.payload.clone()),
                enabled: Set(true),
                builtin: Set(true),
                last_tick: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            };
            job_schedules::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(job_schedules::Column::Name)
                        .update_columns([
                            job_schedules::Column::Cron,
                            job_schedules::Column::Kind,
                            job_schedules::Column::Payload,
                            job_schedules::Column::Builtin,
                            job_schedules::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true, firing due schedules while this process is the leader.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.install_builtins().await {
            tracing::error!(error = %e, "Could not install the built-in schedules");
        }
        let mut leader = Leader::new(&self.db);
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if !leader.hold().await {
                continue;
            }
            match self.fire_due(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(fired = n, "Fired due schedules"),
                Err(e) => tracing::warn!(error = %e, "Could not fire schedules; will retry"),
            }
        }
        leader.release().await;
    }

    /// Fires every enabled schedule whose latest tick at `now` is newer than its last one.
    /// Returns how many fired. Public for tests: it is safe to call from several processes at
    /// once (the compare-and-set on `last_tick` lets exactly one of them fire a tick).
    pub async fn fire_due(&self, now: DateTime<Utc>) -> Result<usize, sea_orm::DbErr> {
        let schedules =
            job_schedules::Entity::find().filter(job_schedules::Column::Enabled.eq(true)).all(&self.db).await?;
        let mut fired = 0;
        for s in schedules {
            let schedule = match berth_core::schedule::parse(&s.cron) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(schedule = %s.name, cron = %s.cron, error = %e, "Schedule has an invalid cron expression; skipped");
                    continue;
                }
            };
            let Some(tick) = latest_tick(&schedule, now) else { continue };
            if s.last_tick.is_some_and(|last| last >= tick) {
                continue;
            }
            let txn = self.db.begin().await?;
            // Compare-and-set: only the process that moves last_tick from what it read fires.
            let mut cas = job_schedules::Entity::update_many()
                .col_expr(job_schedules::Column::LastTick, Expr::value(tick))
                .col_expr(job_schedules::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(job_schedules::Column::Name.eq(s.name.as_str()));
            cas = match s.last_tick {
                Some(last) => cas.filter(job_schedules::Column::LastTick.eq(last)),
                None => cas.filter(job_schedules::Column::LastTick.is_null()),
            };
            if cas.exec(&txn).await?.rows_affected != 1 {
                txn.rollback().await?;
                continue;
            }
            if s.last_tick.is_none() {
                // First sight: start from here, fire from the next tick on.
                txn.commit().await?;
                continue;
            }
            let options = Options { scheduled_for: Some(tick), ..Options::default() };
            match self.registry.row(&s.kind, s.payload.clone(), &options) {
                Ok(mut row) => {
                    // Schedules only enqueue de-duplicated jobs: one waiting run per schedule.
                    row.dedup_key.get_or_insert_with(|| format!("schedule:{}", s.name));
                    berth_core::store::jobs::insert(&txn, vec![row])
                        .await
                        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
                    fired += 1;
                }
                Err(e) => {
                    tracing::warn!(schedule = %s.name, kind = %s.kind, error = %e, "Schedule names a job this worker cannot enqueue; tick skipped");
                }
            }
            txn.commit().await?;
        }
        Ok(fired)
    }
}

/// Leadership: a PostgreSQL session advisory lock on a connection of its own (released when
/// that connection closes, e.g. when the process dies); always held on SQLite.
struct Leader {
    pool: Option<sqlx::PgPool>,
    conn: Option<sqlx::PgConnection>,
}

impl Leader {
    fn new(db: &DatabaseConnection) -> Self {
        let pool =
            (db.get_database_backend() == DbBackend::Postgres).then(|| db.get_postgres_connection_pool().clone());
        Self { pool, conn: None }
    }

    /// True while this process is the leader.
    async fn hold(&mut self) -> bool {
        let Some(pool) = &self.pool else { return true };
        if let Some(conn) = &mut self.conn {
            if conn.ping().await.is_ok() {
                return true;
            }
            tracing::warn!("Lost the scheduler leader connection; stepping down");
            self.conn = None;
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c.detach(),
            Err(_) => return false,
        };
        let got: Result<(bool,), _> =
            sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(LEADER_LOCK).fetch_one(&mut conn).await;
        match got {
            Ok((true,)) => {
                tracing::info!("This process is now the scheduler leader");
                self.conn = Some(conn);
                true
            }
            _ => {
                let _ = conn.close().await;
                false
            }
        }
    }

    async fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the session releases the advisory lock.
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).single().expect("valid date")
    }

    #[test]
    fn latest_tick_is_at_or_before_now() {
        let every_10_min = cron::Schedule::from_str("0 */10 * * * *").expect("cron");
        assert_eq!(latest_tick(&every_10_min, at(12, 0, 0)), Some(at(12, 0, 0)));
        assert_eq!(latest_tick(&every_10_min, at(12, 9, 59)), Some(at(12, 0, 0)));
        assert_eq!(latest_tick(&every_10_min, at(12, 10, 0)), Some(at(12, 10, 0)));
        let with_fraction = at(12, 10, 0) + chrono::Duration::milliseconds(700);
        assert_eq!(latest_tick(&every_10_min, with_fraction), Some(at(12, 10, 0)));
    }

    #[test]
    fn after_downtime_only_the_latest_missed_tick_is_due() {
        // Down from 12:05 to 14:33: twelve ticks were missed, one fires (14:30).
        let every_10_min = cron::Schedule::from_str("0 */10 * * * *").expect("cron");
        assert_eq!(latest_tick(&every_10_min, at(14, 33, 0)), Some(at(14, 30, 0)));
    }
}
