use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    /// A stable slug: `starter`, `business`, `pro`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// CPU in thousandths of a core.
    pub cpu_millis: i32,
    pub memory_mb: i32,
    pub storage_mb: i32,
    pub max_sites: i32,
    /// Days of daily backups: mirrors `keep_daily` (kept for the API's and the welcome
    /// e-mail's sake; a plan change writes both).
    pub backup_retention_days: i32,
    /// Most processes (threads) one site container may run.
    pub max_pids: i32,
    pub created_at: DateTimeUtc,
    /// When sites back up: a five-field cron expression, UTC (`0 * * * *`).
    pub backup_cron: String,
    /// When the daily verified backup runs (`30 3 * * *`).
    pub backup_verify_cron: String,
    /// GFS retention: how many hourly, daily, weekly, monthly and yearly copies to keep.
    pub keep_hourly: i32,
    pub keep_daily: i32,
    pub keep_weekly: i32,
    pub keep_monthly: i32,
    pub keep_yearly: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
