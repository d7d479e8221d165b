//! Site backups: ask for one (202 with the backup row and its `backup.site` job), list them, and
//! download one as a tar stream. Thin handlers over `berth_ops::Ops` (ops/src/backups.rs), which
//! the console and the portal call too; every call is scoped by the caller, so another
//! customer's site or backup id answers 404. Administrators also see the integrity checks of
//! the repositories (`GET /api/v1/backup-checks`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::entities::{backup_checks, backups};
use berth_core::store::page::Page;
use berth_core::types::{BackupKind, BackupStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(download)).routes(routes!(list_checks))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupDto {
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// `manual`, `hourly`, `daily` or `pre_restore`.
    pub kind: BackupKind,
    /// `queued`, `running`, `succeeded` (written and read back), `failed`, or `pruned`
    /// (retention removed its snapshot afterwards; the row stays as the record).
    pub status: BackupStatus,
    /// The snapshot in the customer's repository (64 hex), once written.
    pub snapshot_id: Option<String>,
    /// Bytes of file data in the snapshot.
    pub size_bytes: Option<i64>,
    /// Bytes this backup added to the repository after de-duplication and compression.
    pub added_bytes: Option<i64>,
    pub file_count: Option<i64>,
    /// SHA-256 over the snapshot's manifest (each file's path, size and SHA-256), as read back.
    pub manifest_sha256: Option<String>,
    /// True once every blob of the snapshot was read back intact.
    pub verified: bool,
    /// `local` or `s3`.
    pub target: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The `backup.site` job (`GET /api/v1/jobs/{id}`).
    pub job_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<backups::Model> for BackupDto {
    fn from(b: backups::Model) -> Self {
        Self {
            id: b.id,
            site_id: b.site_id,
            customer_id: b.customer_id,
            kind: b.kind,
            status: b.status,
            snapshot_id: b.snapshot_id,
            size_bytes: b.size_bytes,
            added_bytes: b.added_bytes,
            file_count: b.file_count,
            manifest_sha256: b.manifest_sha256,
            verified: b.verified,
            target: b.target,
            error: b.error,
            job_id: b.job_id,
            started_at: b.started_at,
            finished_at: b.finished_at,
            created_at: b.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupAccepted {
    pub backup: BackupDto,
    /// The `backup.site` job that runs it; follow it at `GET /api/v1/jobs/{job_id}`.
    pub job_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BackupsQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupPage {
    pub items: Vec<BackupDto>,
    pub next_cursor: Option<Uuid>,
}

/// Backs the site up now: records a `queued` backup and its `backup.site` job. The site keeps
/// serving while its volume is read; the backup becomes `succeeded` only after its snapshot was
/// read back.
#[utoipa::path(post, operation_id = "backups_create", path = "/sites/{id}/backups", tag = "backups", params(("id" = Uuid, Path)),
    responses((status = 202, body = BackupAccepted), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<BackupAccepted>)> {
    let requested = state.ops.request_backup(&auth.caller, id, BackupKind::Manual).await?;
    Ok((StatusCode::ACCEPTED, Json(BackupAccepted { backup: requested.backup.into(), job_id: requested.job_id })))
}

/// The site's backups, newest first.
#[utoipa::path(get, operation_id = "backups_list", path = "/sites/{id}/backups", tag = "backups", params(("id" = Uuid, Path), BackupsQuery),
    responses((status = 200, body = BackupPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<BackupsQuery>,
) -> ApiResult<Json<BackupPage>> {
    let found = state.ops.list_backups(&auth.caller, id, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(BackupPage { items: found.items.into_iter().map(Into::into).collect(), next_cursor: found.next_cursor }))
}

/// The backup's data as a tar stream (`application/x-tar`), read from the repository as it is
/// sent, paths relative to the site's data volume. A damaged repository ends the transfer with
/// an error rather than a short archive. Only a succeeded backup can be downloaded (409).
#[utoipa::path(get, operation_id = "backups_download", path = "/sites/{id}/backups/{backup_id}/download", tag = "backups",
    params(("id" = Uuid, Path), ("backup_id" = Uuid, Path)),
    responses((status = 200, content_type = "application/x-tar", description = "The backup's files as a tar stream"), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn download(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, backup_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let download = state.ops.download_backup(&auth.caller, id, backup_id).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", download.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(download.stream),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCheckDto {
    pub id: Uuid,
    /// Whose repository was checked.
    pub customer_id: Uuid,
    /// How much pack data was read back: `part n/7` (the daily run) or `all`.
    pub read_data: String,
    pub ok: bool,
    /// Why the check failed.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl From<backup_checks::Model> for BackupCheckDto {
    fn from(c: backup_checks::Model) -> Self {
        Self {
            id: c.id,
            customer_id: c.customer_id,
            read_data: c.read_data,
            ok: c.ok,
            error: c.error,
            started_at: c.started_at,
            finished_at: c.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCheckPage {
    pub items: Vec<BackupCheckDto>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BackupChecksQuery {
    /// Only this customer's repository.
    pub customer_id: Option<Uuid>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

/// The integrity checks of the customers' backup repositories (`backup.check`), newest first
/// (administrators only).
#[utoipa::path(get, operation_id = "backup_checks_list", path = "/backup-checks", tag = "backups", params(BackupChecksQuery),
    responses((status = 200, body = BackupCheckPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn list_checks(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiQuery(q): ApiQuery<BackupChecksQuery>,
) -> ApiResult<Json<BackupCheckPage>> {
    let page = Page { cursor: q.cursor, limit: q.limit };
    let found = berth_core::store::backup_checks::list(&state.db, &auth.caller, q.customer_id, page).await?;
    Ok(Json(BackupCheckPage {
        items: found.items.into_iter().map(Into::into).collect(),
        next_cursor: found.next_cursor,
    }))
}
