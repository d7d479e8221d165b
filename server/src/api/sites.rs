//! Sites: admins see all, customer users only their own customer's (scoped in the store).
//!
//! Every change goes through the site operations (`berth_ops`), the same calls the console
//! makes: changes are recorded as desired state and the reconciler is woken to converge Docker
//! to them at once; start, stop, update (a new container is health-checked before it replaces
//! the old one) and delete all answer before the container work is done, and the site's
//! `status` then shows progress. Restart acts on the container directly. Logs are read from the
//! container, as JSON or followed as server-sent events.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::store::{self, page::Page, sites::Site};
use berth_core::types::{DesiredState, SiteStatus};
use berth_ops::sites::Deletion;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, patch, delete))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(super::site_logs::logs))
        .routes(routes!(super::site_metrics::metrics))
        .routes(routes!(super::site_backup_policy::get, super::site_backup_policy::put))
        .routes(routes!(super::site_volumes::list))
        .routes(routes!(super::site_volumes::discard))
        .routes(routes!(super::site_restore::restore))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteDto {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub name: String,
    pub image: String,
    /// Host names in ASCII (IDNA) form.
    pub domains: Vec<String>,
    /// Present on single-site reads; lists leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    pub desired_state: DesiredState,
    pub status: SiteStatus,
    pub status_reason: Option<String>,
    pub container_id: Option<String>,
    /// Where the container listens on its customer network (`ip:port`), while running.
    pub address: Option<String>,
    /// Docker's health status of the container (healthy, unhealthy, starting or none), or
    /// `unreachable` when Berth cannot connect to its address, so visitors get an error.
    pub health: Option<String>,
    /// How often Docker restarted the container after it exited.
    pub restart_count: i32,
    /// The last error the runtime met for this site (a failed update, a missing image, ...).
    pub last_error: Option<String>,
    /// The image the serving container runs; differs from `image` while an update failed (the
    /// previous container keeps serving). None while no container runs.
    pub running_image: Option<String>,
    /// Whether an admin let this site run as root (when its image says so). Otherwise it runs
    /// as its image's non-root user, or 65534:65534.
    pub allow_root: bool,
    /// The data volume the site uses when a restore switched it onto a fresh one; null: its
    /// original volume. The volumes it no longer uses are under `/sites/{id}/volumes`.
    pub data_volume: Option<String>,
    pub observed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl SiteDto {
    fn new(site: Site, with_env: bool) -> Self {
        let m = site.model;
        Self {
            id: m.id,
            customer_id: m.customer_id,
            name: m.name,
            image: m.image,
            domains: site.domains,
            env: with_env.then_some(site.env),
            desired_state: m.desired_state,
            status: m.status,
            status_reason: m.status_reason,
            container_id: m.container_id,
            address: m.address,
            health: m.health,
            restart_count: m.restart_count,
            last_error: m.last_error,
            running_image: m.running_image,
            allow_root: m.allow_root,
            data_volume: m.data_volume,
            observed_at: m.observed_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteList {
    pub items: Vec<SiteDto>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub customer_id: Option<Uuid>,
    pub status: Option<SiteStatus>,
    /// Search in site names.
    pub q: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "sites_list", path = "/sites", tag = "sites", params(ListQuery), responses((status = 200, body = SiteList)))]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SiteList>> {
    let filter = store::sites::Filter { customer_id: q.customer_id, status: q.status, q: q.q };
    let page = store::sites::list(&state.db, &auth.caller, filter, Page { cursor: q.cursor, limit: q.limit }).await?;
    Ok(Json(SiteList {
        items: page.items.into_iter().map(|s| SiteDto::new(s, false)).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    /// Required for admins; customer users may omit it.
    pub customer_id: Option<Uuid>,
    /// Lowercase letters, digits and hyphens, 1 to 63 characters.
    pub name: String,
    /// Defaults to the static site image.
    pub image: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[utoipa::path(post, operation_id = "sites_create", path = "/sites", tag = "sites", request_body = CreateSite,
    responses((status = 201, body = SiteDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateSite>,
) -> ApiResult<(StatusCode, Json<SiteDto>)> {
    let new = store::sites::NewSite {
        customer_id: body.customer_id,
        name: body.name,
        image: body.image,
        domains: body.domains,
        env: body.env,
    };
    let site = state.ops.create_site(&auth.caller, new).await?;
    Ok((StatusCode::CREATED, Json(SiteDto::new(site, true))))
}

#[utoipa::path(get, operation_id = "sites_get", path = "/sites/{id}", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 200, body = SiteDto), (status = 404, body = Problem)))]
async fn get(State(state): State<AppState>, auth: Auth, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<SiteDto>> {
    Ok(Json(SiteDto::new(store::sites::get(&state.db, &state.keys, &auth.caller, id).await?, true)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSite {
    pub image: Option<String>,
    /// Replaces the whole list.
    pub domains: Option<Vec<String>>,
    /// Replaces the whole environment.
    pub env: Option<BTreeMap<String, String>>,
    pub desired_state: Option<DesiredState>,
    /// Let the site run as root when its image names no user or root (admins only: 403 for
    /// customer users). Without it a site runs as its image's non-root user, or 65534:65534.
    pub allow_root: Option<bool>,
}

#[utoipa::path(patch, operation_id = "sites_patch", path = "/sites/{id}", tag = "sites", params(("id" = Uuid, Path)), request_body = PatchSite,
    responses((status = 200, body = SiteDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchSite>,
) -> ApiResult<Json<SiteDto>> {
    let patch = store::sites::Patch {
        image: body.image,
        domains: body.domains,
        env: body.env,
        desired_state: body.desired_state,
        allow_root: body.allow_root,
    };
    let site = state.ops.update_site(&auth.caller, id, patch).await?;
    Ok(Json(SiteDto::new(site, true)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Also delete the site's data volume. Without it the volume is kept.
    #[serde(default)]
    pub purge: bool,
}

/// Starts deleting the site: it leaves the ingress at once (status `deleting`), and the
/// reconciler removes its container, then the site (202). The data volume is kept unless
/// `purge`. Without a container runtime there is nothing to remove: the site goes at once (204).
#[utoipa::path(delete, operation_id = "sites_delete", path = "/sites/{id}", tag = "sites", params(("id" = Uuid, Path), DeleteQuery),
    responses((status = 202, description = "Deletion started"), (status = 204, description = "Deleted (no container runtime)"), (status = 404, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    Ok(match state.ops.delete_site(&auth.caller, id, q.purge).await? {
        Deletion::Started => StatusCode::ACCEPTED,
        Deletion::Done => StatusCode::NO_CONTENT,
    })
}

/// Wants the site running; the reconciler starts its container (creating it if needed).
#[utoipa::path(post, operation_id = "sites_start", path = "/sites/{id}/start", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 202, body = SiteDto), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn start(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<SiteDto>)> {
    Ok((StatusCode::ACCEPTED, Json(SiteDto::new(state.ops.start_site(&auth.caller, id).await?, true))))
}

/// Wants the site stopped; the reconciler stops its container (and keeps it).
#[utoipa::path(post, operation_id = "sites_stop", path = "/sites/{id}/stop", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 202, body = SiteDto), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn stop(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<SiteDto>)> {
    Ok((StatusCode::ACCEPTED, Json(SiteDto::new(state.ops.stop_site(&auth.caller, id).await?, true))))
}

/// Restarts the site's container now.
#[utoipa::path(post, operation_id = "sites_restart", path = "/sites/{id}/restart", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 202, body = SiteDto), (status = 404, body = Problem), (status = 409, description = "The site has no running container", body = Problem), (status = 503, body = Problem)))]
async fn restart(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<SiteDto>)> {
    Ok((StatusCode::ACCEPTED, Json(SiteDto::new(state.ops.restart_site(&auth.caller, id).await?, true))))
}
