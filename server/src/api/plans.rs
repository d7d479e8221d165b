//! The plans on offer, and (admin only) their backup schedules and retention.

use axum::extract::State;
use axum::Json;
use berth_core::entities::plans;
use berth_core::store::{self, backup_policy::Settings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(patch))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDto {
    pub id: String,
    pub name: String,
    /// CPU in thousandths of a core.
    pub cpu_millis: i32,
    pub memory_mb: i32,
    pub storage_mb: i32,
    pub max_sites: i32,
    /// Days of daily backups: the same number as `keep_daily`.
    pub backup_retention_days: i32,
    /// When sites on this plan back up: five-field cron, UTC (default `0 * * * *`, hourly).
    pub backup_cron: String,
    /// When the daily verified backup runs: five-field cron, UTC (default `30 3 * * *`).
    pub backup_verify_cron: String,
    /// GFS retention: the newest good backup of each of the last N hours, days, ISO weeks,
    /// months and years that have one.
    pub keep_hourly: i32,
    pub keep_daily: i32,
    pub keep_weekly: i32,
    pub keep_monthly: i32,
    pub keep_yearly: i32,
}

impl From<plans::Model> for PlanDto {
    fn from(p: plans::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            cpu_millis: p.cpu_millis,
            memory_mb: p.memory_mb,
            storage_mb: p.storage_mb,
            max_sites: p.max_sites,
            backup_retention_days: p.backup_retention_days,
            backup_cron: p.backup_cron,
            backup_verify_cron: p.backup_verify_cron,
            keep_hourly: p.keep_hourly,
            keep_daily: p.keep_daily,
            keep_weekly: p.keep_weekly,
            keep_monthly: p.keep_monthly,
            keep_yearly: p.keep_yearly,
        }
    }
}

#[utoipa::path(get, operation_id = "plans_list", path = "/plans", tag = "plans", responses((status = 200, body = Vec<PlanDto>), (status = 401, body = Problem)))]
async fn list(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Vec<PlanDto>>> {
    Ok(Json(store::plans::list(&state.db).await?.into_iter().map(Into::into).collect()))
}

/// A plan's backup schedule and retention; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPlan {
    /// Five-field cron, UTC, e.g. `0 * * * *`.
    pub backup_cron: Option<String>,
    /// Five-field cron, UTC, e.g. `30 3 * * *`.
    pub backup_verify_cron: Option<String>,
    /// 0–1000 each.
    pub keep_hourly: Option<i32>,
    /// Also sets `backup_retention_days`.
    pub keep_daily: Option<i32>,
    pub keep_weekly: Option<i32>,
    pub keep_monthly: Option<i32>,
    pub keep_yearly: Option<i32>,
}

#[utoipa::path(patch, operation_id = "plans_patch", path = "/plans/{id}", tag = "plans", params(("id" = String, Path)), request_body = PatchPlan,
    responses((status = 200, body = PlanDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchPlan>,
) -> ApiResult<Json<PlanDto>> {
    let patch = Settings {
        backup_cron: body.backup_cron,
        backup_verify_cron: body.backup_verify_cron,
        keep_hourly: body.keep_hourly,
        keep_daily: body.keep_daily,
        keep_weekly: body.keep_weekly,
        keep_monthly: body.keep_monthly,
        keep_yearly: body.keep_yearly,
    };
    Ok(Json(store::backup_policy::update_plan(&state.db, &auth.caller, &id, patch).await?.into()))
}
