use sea_orm::entity::prelude::*;

/// Where notifications go: an e-mail address or a webhook URL, a customer's own or, without a
/// customer, the administrators'.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    /// `email` or `webhook`.
    pub kind: String,
    pub target: String,
    pub enabled: bool,
    /// A webhook may reach private addresses (set by an administrator only).
    pub allow_private: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
