//! Restore drills: ask for one now (administrators; 202 with the `backup.drill` job) and list
//! their results. Thin handlers over `berth_ops::Ops` (ops/src/drill.rs), which the console
//! calls too. The list is scoped: administrators see every drill, a customer user only the
//! drills of their own sites.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use berth_core::entities::backup_drills;
use berth_core::store::backup_drills::Filter;
use berth_core::store::page::Page;
use berth_core::types::DrillStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{is_json, parse_json, ApiBytes, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupDrillDto {
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// The backup that was restored (the site's newest succeeded, verified one).
    pub backup_id: Uuid,
    /// `running`, `passed` (every file restored as the backup recorded it, and the site's
    /// container started on it) or `failed` (`error` says why).
    pub status: DrillStatus,
    /// Regular files in the restored data.
    pub files: Option<i64>,
    /// Bytes of file data in the restored data.
    pub bytes: Option<i64>,
    /// Paths missing, extra or different compared with the snapshot's manifest.
    pub mismatches: Option<i64>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<backup_drills::Model> for BackupDrillDto {
    fn from(d: backup_drills::Model) -> Self {
        Self {
            id: d.id,
            site_id: d.site_id,
            customer_id: d.customer_id,
            backup_id: d.backup_id,
            status: d.status,
            files: d.files,
            bytes: d.bytes,
            mismatches: d.mismatches,
            error: d.error,
            started_at: d.started_at,
            finished_at: d.finished_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    /// Drill this site only; left out: a random sample of `BERTH_BACKUP_DRILL_SITES` sites.
    pub site_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DrillAccepted {
    /// The `backup.drill` job; follow it at `GET /api/v1/jobs/{job_id}`. `null` when the same
    /// drill was already queued or running (that one will record the result).
    pub job_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DrillsQuery {
    /// Only this site's drills.
    pub site_id: Option<Uuid>,
    /// `running`, `passed` or `failed`.
    pub status: Option<DrillStatus>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DrillPage {
    pub items: Vec<BackupDrillDto>,
    pub next_cursor: Option<Uuid>,
}

/// Starts a restore drill now (administrators): the newest succeeded, verified backup of one
/// site (`site_id`), or of a random sample of sites (no body), restored into a scratch volume
/// and container and compared file by file with the backup's manifest. The body is optional.
#[utoipa::path(post, operation_id = "backup_drills_create", path = "/backup-drills", tag = "backups",
    request_body(content = DrillRequest, description = "Optional: `{\"site_id\": …}` to drill one site"),
    responses((status = 202, body = DrillAccepted), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<DrillAccepted>)> {
    let request: DrillRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrillRequest::default()
    } else if !is_json(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())) {
        return Err(ApiError::UnsupportedMediaType);
    } else {
        parse_json(&body)?
    };
    let job_id = state.ops.request_drill(&auth.caller, request.site_id).await?;
    Ok((StatusCode::ACCEPTED, Json(DrillAccepted { job_id, site_id: request.site_id })))
}

/// Restore drills, newest first: every drill for administrators, a customer user's own sites'
/// drills only.
#[utoipa::path(get, operation_id = "backup_drills_list", path = "/backup-drills", tag = "backups", params(DrillsQuery),
    responses((status = 200, body = DrillPage), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<DrillsQuery>,
) -> ApiResult<Json<DrillPage>> {
    let filter = Filter { site_id: q.site_id, status: q.status };
    let found = state.ops.list_drills(&auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(DrillPage { items: found.items.into_iter().map(Into::into).collect(), next_cursor: found.next_cursor }))
}
