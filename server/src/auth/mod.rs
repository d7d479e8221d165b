//! Who is calling: a signed-in session (cookie) or a bearer API token, resolved to a
//! [`Caller`] that the data layer scopes by.
//!
//! Cookie-authenticated changes must carry the session's CSRF token in `X-CSRF-Token`
//! (bearer-token calls cannot be forged by a browser and need none). A session stops working
//! when its user is disabled or changes password: both bump the user's session epoch.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use berth_core::access::Caller;
use berth_core::auth as core_auth;
use berth_core::entities::users;
use berth_core::store;
use tower_sessions::Session;

use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::request_id;
use crate::state::AppState;

pub use berth_core::auth::{CSRF_HEADER, SESSION_COOKIE};

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

/// Starts the signed-in session and returns its CSRF token.
pub async fn start_session(session: &Session, user: &users::Model) -> Result<String, ApiError> {
    core_auth::start_session(session, user).await.map_err(session_error)
}

pub async fn csrf_token(session: &Session) -> Result<Option<String>, ApiError> {
    core_auth::csrf_token(session).await.map_err(session_error)
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
        let user = match core_auth::session_user(&state.db, &session).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(ApiError::Unauthorized("sign in or send a valid API token")),
            Err(core_auth::SessionError::Store(e)) => return Err(session_error(e)),
            Err(core_auth::SessionError::Core(e)) => return Err(e.into()),
        };
        if !parts.method.is_safe() {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !core_auth::csrf_matches(&session, sent).await.map_err(session_error)? {
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
