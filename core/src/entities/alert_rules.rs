use sea_orm::entity::prelude::*;

/// What to watch: one metric (`cpu`, `memory`, `down`) globally, for a plan or for one site;
/// the most specific enabled rule wins.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub metric: String,
    /// `global`, `plan` or `site`.
    pub scope: String,
    pub plan_id: Option<String>,
    pub site_id: Option<Uuid>,
    pub warning: f64,
    pub critical: f64,
    pub for_seconds: i32,
    pub enabled: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
