use sea_orm::entity::prelude::*;

/// One line of an incident's timeline: `fired`, `notified`, `silenced`, `acknowledged`,
/// `remediated`, `resolved`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incident_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub incident_id: Uuid,
    pub at: DateTimeUtc,
    pub kind: String,
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
