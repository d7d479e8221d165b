use sea_orm::entity::prelude::*;

/// One firing of an alert, from opened to resolved, with its timeline in `incident_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incidents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub alert_id: Uuid,
    pub metric: String,
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub fingerprint: String,
    pub opened_at: DateTimeUtc,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
