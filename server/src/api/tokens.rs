//! The caller's own API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::entities::api_tokens;
use berth_core::store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub id: Uuid,
    pub name: String,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<api_tokens::Model> for TokenDto {
    fn from(t: api_tokens::Model) -> Self {
        Self {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub record: TokenDto,
    /// Shown once: store it now, Berth keeps only its hash.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
}

#[utoipa::path(post, operation_id = "tokens_create", path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let (record, token) = store::tokens::create(&state.db, &auth.caller, &auth.user, &body.name).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { record: record.into(), token })))
}

#[utoipa::path(get, operation_id = "tokens_list", path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenDto>)))]
async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<TokenDto>>> {
    Ok(Json(store::tokens::list(&state.db, &auth.caller).await?.into_iter().map(Into::into).collect()))
}

#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke(State(state): State<AppState>, auth: Auth, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    store::tokens::revoke(&state.db, &auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
