//! Who is calling: a signed-in session (cookie) or a bearer API token, resolved to a
//! [`Caller`] that the data layer scopes by.
//!
//! Cookie-authenticated changes must carry the session's CSRF token in `X-CSRF-Token`
//! (bearer-token calls cannot be forged by a browser and need none). A session stops working
//! when its user is disabled or changes password: both bump the user's session epoch.

pub mod rate_limit;
pub mod session_store;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use berth_core::access::Caller;
use berth_core::crypto;
use berth_core::entities::users;
use berth_core::store;
use tower_sessions::Session;
use uuid::Uuid;

use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::request_id;
use crate::state::AppState;

pub const SESSION_USER: &str = "user_id";
pub const SESSION_EPOCH: &str = "epoch";
pub const SESSION_CSRF: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const SESSION_COOKIE: &str = "berth_session";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
}

/// An authenticated request.
pub struct Auth {
    pub user: users::Model,
    pub caller: Caller,
    pub via: Via,
    pub session: Option<Session>,
}

pub fn session_error(e: tower_sessions::session::Error) -> ApiError {
    tracing::error!(error = %e, "Session store failed");
    ApiError::Unavailable("the session store is unavailable; try again shortly".into())
}

/// Stores a fresh, rotated login in the session and returns its CSRF token.
pub async fn start_session(session: &Session, user: &users::Model) -> Result<String, ApiError> {
    session.cycle_id().await.map_err(session_error)?;
    let csrf = crypto::random_token("");
    session.insert(SESSION_USER, user.id).await.map_err(session_error)?;
    session.insert(SESSION_EPOCH, user.session_epoch).await.map_err(session_error)?;
    session.insert(SESSION_CSRF, &csrf).await.map_err(session_error)?;
    Ok(csrf)
}

pub async fn csrf_token(session: &Session) -> Result<Option<String>, ApiError> {
    session.get::<String>(SESSION_CSRF).await.map_err(session_error)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let rid = request_id::of(&parts.headers);
        let meta = |caller: Caller| caller.with_request(Some(ip.to_string()), rid.clone());

        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthorized("use `Authorization: Bearer <token>`"))?;
            let user = store::tokens::authenticate(&state.db, token.trim())
                .await?
                .ok_or(ApiError::Unauthorized("invalid or revoked API token"))?;
            let caller = meta(Caller::user(&user));
            return Ok(Auth { user, caller, via: Via::Token, session: None });
        }

        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Unavailable("sessions are not available on this route".into()))?;
        let user_id: Option<Uuid> = session.get(SESSION_USER).await.map_err(session_error)?;
        let Some(user_id) = user_id else {
            return Err(ApiError::Unauthorized("sign in or send a valid API token"));
        };
        let epoch: Option<i32> = session.get(SESSION_EPOCH).await.map_err(session_error)?;
        let user = match store::users::find(&state.db, user_id).await? {
            Some(u) if !u.disabled && Some(u.session_epoch) == epoch => u,
            _ => {
                session.flush().await.map_err(session_error)?;
                return Err(ApiError::Unauthorized("your session has ended; sign in again"));
            }
        };
        if !parts.method.is_safe() {
            let expected = csrf_token(&session).await?;
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let ok = matches!((expected, sent), (Some(e), Some(s)) if crypto::secure_eq(e.as_bytes(), s.as_bytes()));
            if !ok {
                return Err(ApiError::CsrfFailed);
            }
        }
        let caller = meta(Caller::user(&user));
        Ok(Auth { user, caller, via: Via::Session, session: Some(session) })
    }
}

/// An authenticated administrator. Admin-only routes take this, so a customer user gets 403
/// before any body is read; the data layer still checks on its own (`Caller::require_admin`).
pub struct Admin(pub Auth);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        auth.caller.require_admin()?;
        Ok(Admin(auth))
    }
}
