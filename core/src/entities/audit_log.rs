use sea_orm::entity::prelude::*;

/// Append-only: the database refuses UPDATE and DELETE on this table (see the migration).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// UUIDv7, so ids sort by time and serve as the pagination cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    pub actor_id: Option<Uuid>,
    /// Who acted, as text: an e-mail, or `system`/`cli` for Berth itself.
    pub actor: String,
    /// `customer.create`, `site.delete`, `auth.login`, ...
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// The customer the target belongs to, when it belongs to one.
    pub customer_id: Option<Uuid>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
