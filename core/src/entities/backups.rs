use sea_orm::entity::prelude::*;

use crate::types::{BackupKind, BackupStatus};

/// One backup run of a site's data volume and the snapshot it made.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "backups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub kind: BackupKind,
    pub status: BackupStatus,
    /// The snapshot in the customer's repository (64 hex), once written.
    pub snapshot_id: Option<String>,
    /// Bytes of data in the snapshot (the volume's size as read).
    pub size_bytes: Option<i64>,
    /// Bytes this backup added to the repository (after de-duplication and compression).
    pub added_bytes: Option<i64>,
    pub file_count: Option<i64>,
    /// SHA-256 over the snapshot's manifest (each file's path, size and SHA-256), as read back.
    pub manifest_sha256: Option<String>,
    /// True once every blob of the snapshot was read back, decrypted and checked.
    pub verified: bool,
    /// `local` or `s3`: where the repository was when the backup ran.
    pub target: String,
    pub error: Option<String>,
    /// The `backup.site` job that runs it.
    pub job_id: Option<Uuid>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
