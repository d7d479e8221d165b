//! Sites: admins see all, customer users only their own customer's (scoped in the store).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::store::{self, page::Page, sites::Site};
use berth_core::types::{DesiredState, SiteStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, patch, delete))
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
    let site = store::sites::create(&state.db, &state.keys, &auth.caller, new).await?;
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
}

#[utoipa::path(patch, operation_id = "sites_patch", path = "/sites/{id}", tag = "sites", params(("id" = Uuid, Path)), request_body = PatchSite,
    responses((status = 200, body = SiteDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
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
    };
    Ok(Json(SiteDto::new(store::sites::update(&state.db, &state.keys, &auth.caller, id, patch).await?, true)))
}

#[utoipa::path(delete, operation_id = "sites_delete", path = "/sites/{id}", tag = "sites", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete(State(state): State<AppState>, auth: Auth, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    store::sites::delete(&state.db, &auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
