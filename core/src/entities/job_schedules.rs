use sea_orm::entity::prelude::*;

/// A cron schedule that enqueues a job of `kind`. Built-in schedules are written here at start
/// (so their last tick survives restarts); others are stored by operators.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// A `cron` crate expression with seconds: `sec min hour day month weekday [year]`.
    pub cron: String,
    pub kind: String,
    pub payload: Json,
    pub enabled: bool,
    pub builtin: bool,
    /// The last tick fired (or, for a new schedule, passed over). Only moves forward.
    pub last_tick: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
