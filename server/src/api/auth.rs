//! Sign-in, sign-out, the current user, passwords and TOTP.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use berth_core::access::Caller;
use berth_core::auth::{self as core_auth, LoginError};
use berth_core::entities::users;
use berth_core::store::{self, audit};
use berth_core::types::Role;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{self as authn, session_error, Auth, Via};
use crate::http::client_ip::ClientIp;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::ApiJson;
use crate::http::request_id;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(set_password))
        .routes(routes!(totp_enroll))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
}

/// The second factor is changed only by a signed-in person, never with an API token: a token
/// alone must not be able to lock its owner out of the console.
pub fn require_session(auth: &Auth) -> ApiResult<()> {
    match auth.via {
        Via::Session => Ok(()),
        Via::Token => Err(ApiError::SessionRequired),
    }
}

/// A password-confirmed change's refusal, as the API answers it.
pub fn guard_error(e: core_auth::PasswordGuardError) -> ApiError {
    match e {
        core_auth::PasswordGuardError::Limited { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs },
        core_auth::PasswordGuardError::LimiterDown(err) => {
            tracing::error!(error = %err, "Rate limiter unavailable");
            ApiError::Unavailable("the rate limiter is unavailable; try again shortly".into())
        }
        core_auth::PasswordGuardError::Core(err) => err.into(),
    }
}

/// The one message for an unknown e-mail, a wrong password and a disabled account alike.
const BAD_CREDENTIALS: &str = "wrong e-mail or password";

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub customer_id: Option<Uuid>,
    pub totp_enabled: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<users::Model> for UserDto {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            email: u.email,
            role: u.role,
            customer_id: u.customer_id,
            totp_enabled: u.totp_enabled,
            disabled: u.disabled,
            has_password: u.password_hash.is_some(),
            last_login_at: u.last_login_at,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The 6-digit code, required when the account has two-factor authentication.
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: UserDto,
    /// Send this as `X-CSRF-Token` with every cookie-authenticated change.
    pub csrf_token: Option<String>,
}

/// A login POSTed cross-site (a form on another origin) is refused: it would sign the victim
/// into the attacker's account.
fn check_origin(headers: &HeaderMap, state: &AppState) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let public = state.config.server.public_url.origin().ascii_serialization();
    let own_host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let same_host = own_host.is_some_and(|h| origin.split("://").nth(1) == Some(h));
    if origin == public || same_host {
        Ok(())
    } else {
        Err(ApiError::CsrfFailed)
    }
}

#[utoipa::path(post, operation_id = "auth_login", path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionInfo),
        (status = 401, description = "Wrong credentials, or a TOTP code is needed", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<SessionInfo>> {
    check_origin(&headers, &state)?;
    let attempt = core_auth::Attempt {
        email: &body.email,
        password: &body.password,
        totp: body.totp.as_deref(),
        ip,
        request_id: request_id::of(&headers),
    };
    let user =
        core_auth::login(&state.db, &state.keys, &state.limiter, &state.config, attempt).await.map_err(
            |e| match e {
                LoginError::BadCredentials => ApiError::Unauthorized(BAD_CREDENTIALS),
                LoginError::TotpRequired => ApiError::TotpRequired,
                LoginError::TotpWrong => {
                    ApiError::invalid("totp", "is not the current code from your authenticator app")
                }
                LoginError::Limited { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs },
                LoginError::LimiterDown(err) => {
                    tracing::error!(error = %err, "Rate limiter unavailable");
                    ApiError::Unavailable("the rate limiter is unavailable; try again shortly".into())
                }
                LoginError::Core(err) => err.into(),
            },
        )?;
    let csrf = authn::start_session(&session, &user).await?;
    Ok(Json(SessionInfo { user: user.into(), csrf_token: Some(csrf) }))
}

#[utoipa::path(post, operation_id = "auth_logout", path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out; the session is destroyed"), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    audit::record(
        &state.db,
        &auth.caller,
        audit::Event::new("auth.logout", "user", auth.user.id).customer(auth.user.customer_id),
    )
    .await?;
    if let Some(session) = auth.session {
        session.flush().await.map_err(session_error)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, operation_id = "auth_me", path = "/auth/me", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem)))]
async fn me(auth: Auth) -> ApiResult<Json<SessionInfo>> {
    let csrf_token = match &auth.session {
        Some(s) => authn::csrf_token(s).await?,
        None => None,
    };
    Ok(Json(SessionInfo { user: auth.user.into(), csrf_token }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

#[utoipa::path(post, operation_id = "auth_change_password", path = "/auth/password", tag = "auth",
    request_body = ChangePassword,
    responses((status = 200, description = "Changed; other sessions are ended", body = SessionInfo), (status = 422, body = Problem),
        (status = 429, description = "Too many wrong current passwords: limited like sign-in", body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<Json<SessionInfo>> {
    let change = store::users::change_password(
        &state.db,
        &auth.caller,
        auth.user.clone(),
        &body.current_password,
        &body.new_password,
    );
    let user = core_auth::password_guarded(&state.limiter, &state.config, &auth.user, "current_password", change)
        .await
        .map_err(guard_error)?;
    // The epoch bump ended every session; this one continues under a new id and epoch.
    let csrf_token = match (&auth.session, auth.via) {
        (Some(s), Via::Session) => Some(authn::start_session(s, &user).await?),
        _ => None,
    };
    Ok(Json(SessionInfo { user: user.into(), csrf_token }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The token from the one-time link.
    pub token: String,
    pub password: String,
}

#[utoipa::path(post, operation_id = "auth_set_password", path = "/auth/set-password", tag = "auth",
    request_body = SetPassword,
    responses((status = 204, description = "Password set; sign in with it"), (status = 422, body = Problem)))]
async fn set_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    let caller = Caller::system("set-password-link").with_request(Some(ip.to_string()), request_id::of(&headers));
    store::users::set_password_with_token(&state.db, &caller, &body.token, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Show as a QR code, or paste into an authenticator app.
    pub otpauth_uri: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPassword {
    /// The caller's current password.
    pub password: String,
}

/// Needs a signed-in session and the current password; an API token is refused (403).
#[utoipa::path(post, operation_id = "auth_totp_enroll", path = "/auth/totp/enroll", tag = "auth",
    request_body = ConfirmPassword,
    responses((status = 200, body = TotpEnrollment), (status = 403, description = "Called with an API token", body = Problem),
        (status = 409, description = "Already enabled", body = Problem), (status = 422, description = "Wrong password", body = Problem),
        (status = 429, description = "Too many wrong passwords", body = Problem)))]
async fn totp_enroll(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ConfirmPassword>,
) -> ApiResult<Json<TotpEnrollment>> {
    require_session(&auth)?;
    let begin = store::users::begin_totp(&state.db, &state.keys, auth.user.clone(), &body.password);
    let otpauth_uri = core_auth::password_guarded(&state.limiter, &state.config, &auth.user, "password", begin)
        .await
        .map_err(guard_error)?;
    Ok(Json(TotpEnrollment { otpauth_uri }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    pub code: String,
}

/// Needs the signed-in session that started the enrolment; an API token is refused (403).
#[utoipa::path(post, operation_id = "auth_totp_confirm", path = "/auth/totp/confirm", tag = "auth",
    request_body = TotpConfirm,
    responses((status = 200, body = UserDto), (status = 403, description = "Called with an API token", body = Problem),
        (status = 422, body = Problem)))]
async fn totp_confirm(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<TotpConfirm>,
) -> ApiResult<Json<UserDto>> {
    require_session(&auth)?;
    let user = store::users::confirm_totp(&state.db, &state.keys, &auth.caller, auth.user, &body.code).await?;
    Ok(Json(user.into()))
}

/// Turns the caller's own second factor off. Needs a signed-in session and the current password.
#[utoipa::path(post, operation_id = "auth_totp_disable", path = "/auth/totp/disable", tag = "auth",
    request_body = ConfirmPassword,
    responses((status = 200, body = UserDto), (status = 403, description = "Called with an API token", body = Problem),
        (status = 409, description = "Not enabled", body = Problem), (status = 422, description = "Wrong password", body = Problem),
        (status = 429, description = "Too many wrong passwords", body = Problem)))]
async fn totp_disable(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ConfirmPassword>,
) -> ApiResult<Json<UserDto>> {
    require_session(&auth)?;
    let disable = store::users::disable_totp(&state.db, &auth.caller, auth.user.clone(), &body.password);
    let user = core_auth::password_guarded(&state.limiter, &state.config, &auth.user, "password", disable)
        .await
        .map_err(guard_error)?;
    Ok(Json(user.into()))
}
