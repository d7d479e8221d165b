//! The vocabularies shared by the database, the API, the UI and metrics. Each enum is stored as
//! its lowercase string, so the values a script sees in JSON are the values in the database.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "customer")]
    Customer,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum CustomerStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "suspended")]
    Suspended,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// A site's status: one vocabulary for the API, the UI and metrics.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SiteStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "provisioning")]
    Provisioning,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "stopped")]
    Stopped,
    #[sea_orm(string_value = "suspended")]
    Suspended,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "deleting")]
    Deleting,
}

/// What the owner wants a site to be doing; the runtime converges the observed status to it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "stopped")]
    Stopped,
}

/// Why a backup was taken.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// Asked for by a person ("back up now", `POST /api/v1/sites/{id}/backups`).
    #[sea_orm(string_value = "manual")]
    Manual,
    #[sea_orm(string_value = "hourly")]
    Hourly,
    #[sea_orm(string_value = "daily")]
    Daily,
    /// Taken of the current data before a restore replaces it.
    #[sea_orm(string_value = "pre_restore")]
    PreRestore,
}

/// Where a backup run stands. `succeeded` means the snapshot was written **and** read back;
/// `pruned` means retention removed it afterwards (its snapshot is forgotten, the row stays as
/// the record: `backup.prune`, docs/backups.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "pruned")]
    Pruned,
}

/// How a restore drill ended (`running` until it did).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum DrillStatus {
    #[sea_orm(string_value = "running")]
    Running,
    /// The restored files equal the backup's manifest, path by path and byte for byte.
    #[sea_orm(string_value = "passed")]
    Passed,
    /// The backup did not restore, or what it restored differs; `error` says which.
    #[sea_orm(string_value = "failed")]
    Failed,
}
