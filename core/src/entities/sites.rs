use sea_orm::entity::prelude::*;

use crate::types::{DesiredState, SiteStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub name: String,
    pub image: String,
    /// The site's environment as a JSON object, sealed with the data key (context
    /// `site-env:<site id>`).
    pub env: String,
    /// Desired state, set by owners through the API.
    pub desired_state: DesiredState,
    /// Observed state, set by the runtime.
    pub status: SiteStatus,
    pub status_reason: Option<String>,
    pub container_id: Option<String>,
    pub observed_at: Option<DateTimeUtc>,
    /// `ip:port` on the customer network (observed; what the ingress proxies to).
    pub address: Option<String>,
    pub health: Option<String>,
    pub restart_count: i32,
    pub last_error: Option<String>,
    /// Hash of the specification the current container was made from.
    pub spec_hash: Option<String>,
    /// A specification whose replacement failed; not retried until the site changes.
    pub failed_spec_hash: Option<String>,
    /// Delete the data volume too when the deletion completes.
    pub purge_volume: bool,
    /// The container may run as the image's user even when that is root (set by admins only);
    /// otherwise a site whose image names no user, or root, runs as 65534:65534.
    pub allow_root: bool,
    /// The image the serving container was made from (observed); differs from `image` while
    /// an update has failed.
    pub running_image: Option<String>,
    /// The data volume the site uses; `None`: the default name (`<prefix>-data-<site id>`).
    /// Set when a restore switches the site onto a fresh volume.
    pub data_volume: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Overrides of the plan's backup schedule and retention; `None`: the plan's.
    pub backup_cron: Option<String>,
    pub backup_verify_cron: Option<String>,
    pub keep_hourly: Option<i32>,
    pub keep_daily: Option<i32>,
    pub keep_weekly: Option<i32>,
    pub keep_monthly: Option<i32>,
    pub keep_yearly: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
