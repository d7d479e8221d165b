//! A site's backup schedule and retention: what is in force (the site's overrides over its
//! plan), readable by whoever may see the site; the overrides are set by administrators.

use axum::extract::State;
use axum::Json;
use berth_core::store::backup_policy::{self, Effective, Settings, SitePolicy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// Backup settings of a site; in `overrides`, `null` means "the plan's".
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupSettingsDto {
    pub backup_cron: Option<String>,
    pub backup_verify_cron: Option<String>,
    pub keep_hourly: Option<i32>,
    pub keep_daily: Option<i32>,
    pub keep_weekly: Option<i32>,
    pub keep_monthly: Option<i32>,
    pub keep_yearly: Option<i32>,
}

impl From<Settings> for BackupSettingsDto {
    fn from(s: Settings) -> Self {
        Self {
            backup_cron: s.backup_cron,
            backup_verify_cron: s.backup_verify_cron,
            keep_hourly: s.keep_hourly,
            keep_daily: s.keep_daily,
            keep_weekly: s.keep_weekly,
            keep_monthly: s.keep_monthly,
            keep_yearly: s.keep_yearly,
        }
    }
}

impl From<BackupSettingsDto> for Settings {
    fn from(s: BackupSettingsDto) -> Self {
        Self {
            backup_cron: s.backup_cron,
            backup_verify_cron: s.backup_verify_cron,
            keep_hourly: s.keep_hourly,
            keep_daily: s.keep_daily,
            keep_weekly: s.keep_weekly,
            keep_monthly: s.keep_monthly,
            keep_yearly: s.keep_yearly,
        }
    }
}

/// The settings in force for a site.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveDto {
    pub backup_cron: String,
    pub backup_verify_cron: String,
    pub keep_hourly: i32,
    pub keep_daily: i32,
    pub keep_weekly: i32,
    pub keep_monthly: i32,
    pub keep_yearly: i32,
}

impl From<Effective> for EffectiveDto {
    fn from(e: Effective) -> Self {
        Self {
            backup_cron: e.backup_cron,
            backup_verify_cron: e.backup_verify_cron,
            keep_hourly: e.keep_hourly,
            keep_daily: e.keep_daily,
            keep_weekly: e.keep_weekly,
            keep_monthly: e.keep_monthly,
            keep_yearly: e.keep_yearly,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteBackupPolicyDto {
    pub site_id: Uuid,
    /// The plan whose settings apply where the site has no override.
    pub plan: String,
    /// What the site overrides (`null`: the plan's).
    pub overrides: BackupSettingsDto,
    /// What is in force.
    pub effective: EffectiveDto,
}

impl From<SitePolicy> for SiteBackupPolicyDto {
    fn from(p: SitePolicy) -> Self {
        Self { site_id: p.site_id, plan: p.plan_id, overrides: p.overrides.into(), effective: p.effective.into() }
    }
}

#[utoipa::path(get, operation_id = "sites_backup_policy_get", path = "/sites/{id}/backup-policy", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 200, body = SiteBackupPolicyDto), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SiteBackupPolicyDto>> {
    Ok(Json(backup_policy::site(&state.db, &auth.caller, id).await?.into()))
}

/// Replaces the site's overrides: every field left out or `null` follows the plan again.
#[utoipa::path(put, operation_id = "sites_backup_policy_put", path = "/sites/{id}/backup-policy", tag = "sites", params(("id" = Uuid, Path)), request_body = BackupSettingsDto,
    responses((status = 200, body = SiteBackupPolicyDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<BackupSettingsDto>,
) -> ApiResult<Json<SiteBackupPolicyDto>> {
    Ok(Json(backup_policy::set_site_overrides(&state.db, &auth.caller, id, body.into()).await?.into()))
}
