use sea_orm::entity::prelude::*;

/// A data volume a site no longer uses (its data replaced by a restore, or a fresh volume whose
/// switch failed), kept until an operator discards it or `keep_until` passes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "site_volumes")]
pub struct Model {
    /// The Docker volume's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// Why the site no longer uses it: `replaced_by_restore`, `failed_switch`.
    pub reason: String,
    pub retired_at: DateTimeUtc,
    /// The housekeeping job removes the volume after this.
    pub keep_until: DateTimeUtc,
    /// When the volume was removed; the row stays as the record.
    pub discarded_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
