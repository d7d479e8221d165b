//! Signing in, shared by the REST API and the server-rendered UI: the login procedure with its
//! rate limits, and the session keys both read and write. The HTTP layers on top only map the
//! outcomes to their own answers (problem+json, or a page).

pub mod rate_limit;
pub mod session_store;

use std::net::IpAddr;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tower_sessions::Session;

use crate::access::Caller;
use crate::config::Config;
use crate::crypto::{self, Keys, PasswordCheck};
use crate::entities::users;
use crate::error::Error;
use crate::store;
use rate_limit::{RateLimiter, Verdict};

pub const SESSION_USER: &str = "user_id";
pub const SESSION_EPOCH: &str = "epoch";
pub const SESSION_CSRF: &str = "csrf";
pub const SESSION_COOKIE: &str = "berth_session";
/// The header (API) or form field (UI: `csrf_token`) carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The one answer for an unknown e-mail, a wrong password and a disabled account alike.
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("enter the 6-digit code from your authenticator app")]
    TotpRequired,
    #[error("the two-factor code is not the current one")]
    TotpWrong,
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    Limited { retry_after_secs: u64 },
    #[error("the rate limiter is unavailable")]
    LimiterDown(#[source] redis::RedisError),
    #[error(transparent)]
    Core(#[from] Error),
}

/// One sign-in attempt, as the client sent it.
pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub ip: IpAddr,
    pub request_id: Option<String>,
}

fn verdict(v: Result<Verdict, redis::RedisError>) -> Result<(), LoginError> {
    match v.map_err(LoginError::LimiterDown)? {
        Verdict::Allowed => Ok(()),
        Verdict::Limited { retry_after_secs } => Err(LoginError::Limited { retry_after_secs }),
    }
}

/// Checks credentials under the per-IP and per-account limits, upgrades an outdated password
/// hash, and records the login. The caller then starts the session ([`start_session`]).
///
/// Every attempt counts against the address; only failures count against the account, so an
/// attacker cannot lock a user out from one address faster than the per-IP limit allows.
pub async fn login(
    db: &DatabaseConnection,
    keys: &Keys,
    limiter: &RateLimiter,
    config: &Config,
    attempt: Attempt<'_>,
) -> Result<users::Model, LoginError> {
    let window = Duration::from_secs(config.server.login_limit_window_seconds);
    let email = attempt.email.trim().to_lowercase();
    let account_key = format!("login:account:{email}");
    verdict(limiter.hit(&format!("login:ip:{}", attempt.ip), config.server.login_limit_per_ip, window).await)?;
    verdict(limiter.check(&account_key, config.server.login_limit_per_account, window).await)?;
    let count_failure = || async {
        limiter.hit(&account_key, config.server.login_limit_per_account, window).await.map_err(LoginError::LimiterDown)
    };

    let user = store::users::find_by_email(db, &email).await?;
    let check =
        store::users::verify_password(attempt.password, user.as_ref().and_then(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|u| check != PasswordCheck::Wrong && !u.disabled) else {
        count_failure().await?;
        return Err(LoginError::BadCredentials);
    };
    if user.totp_enabled {
        let Some(code) = attempt.totp.map(str::trim).filter(|c| !c.is_empty()) else {
            return Err(LoginError::TotpRequired);
        };
        if !store::users::check_totp(keys, &user, code)? {
            count_failure().await?;
            return Err(LoginError::TotpWrong);
        }
    }
    limiter.clear(&account_key).await.map_err(LoginError::LimiterDown)?;

    let rehash = match check {
        PasswordCheck::OkNeedsRehash => Some(store::users::hash_password(attempt.password).await?),
        _ => None,
    };
    let caller = Caller::user(&user).with_request(Some(attempt.ip.to_string()), attempt.request_id);
    Ok(store::users::record_login(db, user, &caller, rehash).await?)
}

/// Stores a fresh login in the session under a new id (rotation defeats fixation) and
/// returns its CSRF token.
pub async fn start_session(session: &Session, user: &users::Model) -> Result<String, tower_sessions::session::Error> {
    session.cycle_id().await?;
    let csrf = crypto::random_token("");
    session.insert(SESSION_USER, user.id).await?;
    session.insert(SESSION_EPOCH, user.session_epoch).await?;
    session.insert(SESSION_CSRF, &csrf).await?;
    Ok(csrf)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session store failed: {0}")]
    Store(#[from] tower_sessions::session::Error),
    #[error(transparent)]
    Core(#[from] Error),
}

/// The signed-in user of a session, if it is still valid: a disabled user or a bumped session
/// epoch (password change, disable) ends it, and the stale session is destroyed.
pub async fn session_user(db: &DatabaseConnection, session: &Session) -> Result<Option<users::Model>, SessionError> {
    let Some(user_id) = session.get::<uuid::Uuid>(SESSION_USER).await? else {
        return Ok(None);
    };
    let epoch: Option<i32> = session.get(SESSION_EPOCH).await?;
    match store::users::find(db, user_id).await? {
        Some(u) if !u.disabled && Some(u.session_epoch) == epoch => Ok(Some(u)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

pub async fn csrf_token(session: &Session) -> Result<Option<String>, tower_sessions::session::Error> {
    session.get::<String>(SESSION_CSRF).await
}

/// Whether `sent` is this session's CSRF token (compared in constant time).
pub async fn csrf_matches(session: &Session, sent: Option<&str>) -> Result<bool, tower_sessions::session::Error> {
    let expected = csrf_token(session).await?;
    Ok(matches!((expected, sent), (Some(e), Some(s)) if crypto::secure_eq(e.as_bytes(), s.as_bytes())))
}
