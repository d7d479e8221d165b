use sea_orm::entity::prelude::*;

/// One row per accepted webhook event id: a replay of the same id returns `response` and
/// starts nothing.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    /// The sender's event id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `signup`.
    pub kind: String,
    pub received_at: DateTimeUtc,
    pub customer_id: Option<Uuid>,
    pub status_code: i32,
    /// The body of the first answer, returned again on replays.
    pub response: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
