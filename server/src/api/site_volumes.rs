//! The data volumes a site no longer uses: a restore switches a site onto a fresh volume and
//! keeps the one it replaced (`BERTH_RETIRED_VOLUME_KEEP_DAYS`) until an operator discards it
//! here or the housekeeping job removes it. Scoped like the site: another customer's site, or
//! a volume that is not this site's, answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::entities::site_volumes;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::ApiPath;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteVolumeDto {
    /// The Docker volume's name.
    pub name: String,
    pub site_id: Uuid,
    /// Why the site no longer uses it: `replaced_by_restore` (it holds the data from before a
    /// restore) or `failed_switch` (the restored data whose container did not become healthy).
    pub reason: String,
    pub retired_at: chrono::DateTime<chrono::Utc>,
    /// Removed by housekeeping after this, unless discarded sooner.
    pub keep_until: chrono::DateTime<chrono::Utc>,
}

impl From<site_volumes::Model> for SiteVolumeDto {
    fn from(m: site_volumes::Model) -> Self {
        Self { name: m.name, site_id: m.site_id, reason: m.reason, retired_at: m.retired_at, keep_until: m.keep_until }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteVolumeList {
    pub items: Vec<SiteVolumeDto>,
}

/// The volumes the site no longer uses and that are still kept, newest first.
#[utoipa::path(get, operation_id = "sites_volumes_list", path = "/sites/{id}/volumes", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 200, body = SiteVolumeList), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SiteVolumeList>> {
    let items = state.ops.site_volumes(&auth.caller, id).await?;
    Ok(Json(SiteVolumeList { items: items.into_iter().map(SiteVolumeDto::from).collect() }))
}

/// Removes a volume the site no longer uses, with its data (audited as `site.volume_discard`).
/// The volume the site uses is never removed (409).
#[utoipa::path(delete, operation_id = "sites_volumes_discard", path = "/sites/{id}/volumes/{name}", tag = "sites",
    params(("id" = Uuid, Path), ("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn discard(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, name)): ApiPath<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    state.ops.discard_volume(&auth.caller, id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
