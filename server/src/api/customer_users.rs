//! A customer's portal users (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{guard_error, require_session, ConfirmPassword, UserDto};
use crate::auth::Admin;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use berth_core::auth as core_auth;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(patch)).routes(routes!(reset_totp))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerUser {
    pub email: String,
    /// Omit to send the user a one-time link to choose their own password.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedCustomerUser {
    pub user: UserDto,
    /// The one-time link (valid 72 hours) when no password was given. Built from
    /// BERTH_PUBLIC_URL, never from the request.
    pub set_password_url: Option<String>,
}

#[utoipa::path(post, operation_id = "customer_users_create", path = "/customers/{id}/users", tag = "customers", params(("id" = Uuid, Path)),
    request_body = CreateCustomerUser,
    responses((status = 201, body = CreatedCustomerUser), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateCustomerUser>,
) -> ApiResult<(StatusCode, Json<CreatedCustomerUser>)> {
    let (user, token) =
        store::users::create_customer_user(&state.db, &auth.caller, id, &body.email, body.password.as_deref()).await?;
    let set_password_url = token.map(|t| state.config.server.public_link(&format!("/set-password?token={t}")));
    Ok((StatusCode::CREATED, Json(CreatedCustomerUser { user: user.into(), set_password_url })))
}

#[utoipa::path(get, operation_id = "customer_users_list", path = "/customers/{id}/users", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<UserDto>), (status = 404, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<UserDto>>> {
    let users = store::users::list_for_customer(&state.db, &auth.caller, id).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCustomerUser {
    /// Disabling ends the user's sessions and revokes their API tokens at once.
    pub disabled: bool,
}

#[utoipa::path(patch, operation_id = "customer_users_patch", path = "/customers/{id}/users/{user_id}", tag = "customers",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = PatchCustomerUser,
    responses((status = 200, body = UserDto), (status = 404, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath((id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<PatchCustomerUser>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(store::users::set_disabled(&state.db, &auth.caller, id, user_id, body.disabled).await?.into()))
}

/// Turns off the second factor of a portal user who lost their authenticator, so they can sign
/// in with their password and set up a new one. Needs an administrator's signed-in session and
/// the administrator's own password (an API token is refused); audited as `user.totp_reset`.
#[utoipa::path(post, operation_id = "customer_users_reset_totp", path = "/customers/{id}/users/{user_id}/totp/reset", tag = "customers",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ConfirmPassword,
    responses((status = 200, body = UserDto), (status = 404, body = Problem),
        (status = 409, description = "The user has no second factor", body = Problem),
        (status = 422, description = "Wrong password", body = Problem),
        (status = 429, description = "Too many wrong passwords", body = Problem)))]
async fn reset_totp(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath((id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<ConfirmPassword>,
) -> ApiResult<Json<UserDto>> {
    require_session(&auth)?;
    let reset = store::users::reset_totp(&state.db, &auth.caller, &auth.user, &body.password, id, user_id);
    let user = core_auth::password_guarded(&state.limiter, &state.config, &auth.user, "password", reset)
        .await
        .map_err(guard_error)?;
    Ok(Json(user.into()))
}
