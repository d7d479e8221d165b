use sea_orm::entity::prelude::*;

/// One row per host name: the primary key makes a domain belong to at most one site.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "site_domains")]
pub struct Model {
    /// Lowercase ASCII (IDNA) form.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain: String,
    pub site_id: Uuid,
    pub position: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
