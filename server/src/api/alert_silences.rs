//! Alert silences (admins only, audited): while one covers an alert, its notifications are not
//! sent and its incident records `silenced` instead. docs/monitoring.md#silences.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::entities::alert_silences;
use berth_core::store::silences::{self as store, NewSilence};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Admin;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_silences, create_silence)).routes(routes!(expire_silence))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceDto {
    pub id: Uuid,
    /// `all`, `customer` or `site`.
    pub scope: String,
    pub customer_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// `null`: every metric.
    pub metric: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// In force now.
    pub active: bool,
}

impl From<alert_silences::Model> for SilenceDto {
    fn from(s: alert_silences::Model) -> Self {
        let active = store::is_active(&s, Utc::now());
        Self {
            id: s.id,
            scope: s.scope,
            customer_id: s.customer_id,
            site_id: s.site_id,
            metric: s.metric,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            reason: s.reason,
            created_by: s.created_by,
            created_at: s.created_at,
            active,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SilencesQuery {
    /// Also the silences that have ended (default false).
    #[serde(default)]
    pub include_ended: bool,
}

/// The silences in force or yet to start, the latest ending first (admins).
#[utoipa::path(get, operation_id = "alert_silences_list", path = "/alert-silences", tag = "alerts", params(SilencesQuery),
    responses((status = 200, body = Vec<SilenceDto>), (status = 403, body = Problem)))]
async fn list_silences(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiQuery(q): ApiQuery<SilencesQuery>,
) -> ApiResult<Json<Vec<SilenceDto>>> {
    Ok(Json(store::list(&state.db, &auth.caller, q.include_ended).await?.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSilence {
    /// `all`, `customer` or `site`.
    pub scope: String,
    /// With scope `customer`.
    pub customer_id: Option<Uuid>,
    /// With scope `site`.
    pub site_id: Option<Uuid>,
    /// One metric; absent for every metric.
    pub metric: Option<String>,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    /// Required: after the start, in the future, at most 90 days after the start.
    pub ends_at: Option<DateTime<Utc>>,
    /// Why (shown in the incident's timeline), at most 500 characters.
    #[serde(default)]
    pub reason: String,
}

/// Silences notifications until `ends_at` (admins, audited).
#[utoipa::path(post, operation_id = "alert_silences_create", path = "/alert-silences", tag = "alerts",
    request_body = CreateSilence,
    responses((status = 201, body = SilenceDto), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_silence(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiJson(body): ApiJson<CreateSilence>,
) -> ApiResult<(StatusCode, Json<SilenceDto>)> {
    let new = NewSilence {
        scope: body.scope,
        customer_id: body.customer_id,
        site_id: body.site_id,
        metric: body.metric,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        reason: body.reason,
    };
    let silence = store::create(&state.db, &auth.caller, new).await?;
    berth_core::store::alert_states::invalidate(&state.cache).await;
    Ok((StatusCode::CREATED, Json(silence.into())))
}

/// Expires a silence now (admins, audited): notifications resume with the next transition. The
/// silence stays listed with `include_ended`.
#[utoipa::path(delete, operation_id = "alert_silences_expire", path = "/alert-silences/{id}", tag = "alerts",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn expire_silence(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    store::expire(&state.db, &auth.caller, id).await?;
    berth_core::store::alert_states::invalidate(&state.cache).await;
    Ok(StatusCode::NO_CONTENT)
}
