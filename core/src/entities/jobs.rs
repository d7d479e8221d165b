use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a job is in its life. `queued` includes jobs waiting for a retry (`run_at` in the
/// future, `last_error` set); `dead` jobs ran out of attempts and wait for a person.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "dead")]
    Dead,
}

/// One job: the queue entry and, once finished, its record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// UUIDv7: ids sort by enqueue time and serve as the pagination cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The job type's stable `NAME`.
    pub kind: String,
    pub queue: String,
    /// Higher runs first.
    pub priority: i32,
    pub state: JobState,
    pub payload: Json,
    /// Runs started so far (a claim increments it).
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimed before this instant (retry backoff).
    pub run_at: DateTimeUtc,
    /// The fencing token of the current run: every write by a worker names it, so a worker
    /// whose lease was taken over can no longer change the row.
    pub lease_id: Option<Uuid>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// The worker holding (or that last held) the lease.
    pub locked_by: Option<String>,
    /// Unique among queued and running jobs when set.
    pub dedup_key: Option<String>,
    /// The customer this job works for, when it works for one (tenant scoping of the API).
    pub customer_id: Option<Uuid>,
    /// The flow run this job drives, when it drives one.
    pub flow_run_id: Option<Uuid>,
    /// The cron tick that enqueued this job, for scheduled jobs.
    pub scheduled_for: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
