use sea_orm::entity::prelude::*;

use crate::types::DrillStatus;

/// One restore drill of a site: its newest good backup restored into a scratch volume and
/// container, and what the comparison with the backup's manifest found.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "backup_drills")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// The backup that was restored.
    pub backup_id: Uuid,
    pub status: DrillStatus,
    /// Regular files found in the restored volume.
    pub files: Option<i64>,
    /// Bytes of file data found in the restored volume.
    pub bytes: Option<i64>,
    /// Paths that are missing, extra or different compared with the snapshot's manifest.
    pub mismatches: Option<i64>,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
