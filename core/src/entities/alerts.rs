use sea_orm::entity::prelude::*;

/// The state of one metric of one site: `ok`, `pending`, `firing` or `resolved`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub metric: String,
    pub rule_id: Uuid,
    pub state: String,
    /// `warning` or `critical` while pending or firing.
    pub severity: Option<String>,
    pub value: Option<f64>,
    pub pending_since: Option<DateTimeUtc>,
    /// While firing: since when the condition has been clear (the hold before resolving).
    pub clear_since: Option<DateTimeUtc>,
    pub fired_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
    pub fingerprint: String,
    /// The incident opened by the last firing.
    pub incident_id: Option<Uuid>,
    /// The severity the last notification of this firing told (`warning` or `critical`), so
    /// an escalation to critical notifies once.
    pub notified_severity: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
