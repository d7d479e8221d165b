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
    pub backup_retention_days: i32,
    /// Most processes (threads) one site container may run.
    pub max_pids: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
