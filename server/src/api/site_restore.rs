//! Restoring a site from one of its backups: `POST /sites/{id}/backups/{backup_id}/restore`
//! starts a `site.restore` flow run (202) whose steps (verify, pre_restore, fill, switch,
//! keep_old) are read under `/flows/{run id}`. Customers restore their own sites; another
//! customer's site or backup answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::flows::FlowRunDto;
use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::ApiPath;
use crate::state::AppState;
use uuid::Uuid;

/// Starts restoring the backup onto the site: the snapshot is verified before anything is
/// touched, the current data is backed up, the snapshot fills a fresh volume, and the site
/// switches onto it through a health-checked replacement container; on any failure the site
/// stays on (or goes back to) its data, and the old volume is kept (`/sites/{id}/volumes`).
/// Follow the run at `/flows/{id}`. 409 when the backup did not succeed or a restore of the
/// site is already running.
#[utoipa::path(post, operation_id = "sites_backups_restore", path = "/sites/{id}/backups/{backup_id}/restore", tag = "sites",
    params(("id" = Uuid, Path), ("backup_id" = Uuid, Path)),
    responses((status = 202, body = FlowRunDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn restore(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, backup_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<FlowRunDto>)> {
    let run = state.ops.start_restore(&auth.caller, id, backup_id).await?;
    Ok((StatusCode::ACCEPTED, Json(FlowRunDto::new(run, None))))
}
