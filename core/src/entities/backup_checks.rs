use sea_orm::entity::prelude::*;

/// One integrity check of a customer's backup repository (`backup.check`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "backup_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    /// How much pack data was read back: `part n/7` (the daily run) or `all`.
    pub read_data: String,
    pub ok: bool,
    /// Why the check failed.
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
