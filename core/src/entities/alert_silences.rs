use sea_orm::entity::prelude::*;

/// A silence: while it covers an alert (all sites, one customer's, or one site, optionally one
/// metric), notifications are not sent; the alert and its incident still record everything.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_silences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `all`, `customer` or `site`.
    pub scope: String,
    pub customer_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// `None`: every metric.
    pub metric: Option<String>,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
