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

/// The limiter key of a client address; an admin clears it from the console.
pub fn ip_key(ip: &str) -> String {
    format!("login:ip:{}", ip.trim())
}

/// The limiter key of an account (by e-mail); an admin clears it from the console.
pub fn account_key(email: &str) -> String {
    format!("login:account:{}", email.trim().to_lowercase())
}

/// Why a sign-in failed, as the audit log records it (`auth.login_failed`, `details.reason`).
fn failure_reason(e: &LoginError) -> &'static str {
    match e {
        LoginError::BadCredentials => "bad_credentials",
        LoginError::TotpRequired => "totp_missing",
        LoginError::TotpWrong => "totp_wrong",
        LoginError::Limited { .. } => "limited",
        LoginError::LimiterDown(_) | LoginError::Core(_) => "error",
    }
}

/// Checks credentials under the per-IP and per-account limits, upgrades an outdated password
/// hash, and records the login. The caller then starts the session ([`start_session`]).
///
/// Only failures count: against the address always, and against the account when the password
/// or the code was wrong, so an operator who signs in often is never limited by it, and an
/// attacker cannot lock a user out from one address faster than the per-IP limit allows. Every
/// failure (wrong password, missing or wrong code, limited) is audited as `auth.login_failed`.
pub async fn login(
    db: &DatabaseConnection,
    keys: &Keys,
    limiter: &RateLimiter,
    config: &Config,
    attempt: Attempt<'_>,
) -> Result<users::Model, LoginError> {
    let email = attempt.email.trim().to_lowercase();
    let ip = attempt.ip.to_string();
    let caller = Caller::system(&email).with_request(Some(ip.clone()), attempt.request_id.clone());
    let outcome = check_login(db, keys, limiter, config, &attempt, &email).await;
    let (user, rehash) = match outcome {
        Ok(ok) => ok,
        Err((e, user)) => {
            if !matches!(e, LoginError::LimiterDown(_) | LoginError::Core(_)) {
                let target = user.as_ref().map(|u| u.id.to_string()).unwrap_or_else(|| email.clone());
                let event = store::audit::Event::new("auth.login_failed", "user", target)
                    .customer(user.as_ref().and_then(|u| u.customer_id))
                    .details(serde_json::json!({"email": email, "reason": failure_reason(&e)}));
                store::audit::record(db, &caller, event).await?;
            }
            return Err(e);
        }
    };
    let caller = Caller::user(&user).with_request(Some(ip), attempt.request_id);
    Ok(store::users::record_login(db, user, &caller, rehash).await?)
}

type Failure = (LoginError, Option<users::Model>);

async fn check_login(
    db: &DatabaseConnection,
    keys: &Keys,
    limiter: &RateLimiter,
    config: &Config,
    attempt: &Attempt<'_>,
    email: &str,
) -> Result<(users::Model, Option<String>), Failure> {
    let window = Duration::from_secs(config.server.login_limit_window_seconds);
    let ip_key = ip_key(&attempt.ip.to_string());
    let account_key = account_key(email);
    let (per_ip, per_account) = (config.server.login_limit_per_ip, config.server.login_limit_per_account);
    let bare = |e: LoginError| (e, None);
    verdict(limiter.check(&ip_key, per_ip, window).await).map_err(bare)?;
    verdict(limiter.check(&account_key, per_account, window).await).map_err(bare)?;
    let count_failure = |account: bool| {
        let (ip_key, account_key) = (ip_key.clone(), account_key.clone());
        async move {
            limiter.hit(&ip_key, per_ip, window).await.map_err(LoginError::LimiterDown)?;
            if account {
                limiter.hit(&account_key, per_account, window).await.map_err(LoginError::LimiterDown)?;
            }
            Ok::<(), LoginError>(())
        }
    };

    let user = store::users::find_by_email(db, email).await.map_err(|e| bare(e.into()))?;
    let check = store::users::verify_password(attempt.password, user.as_ref().and_then(|u| u.password_hash.clone()))
        .await
        .map_err(|e| bare(e.into()))?;
    let Some(user) = user.filter(|u| check != PasswordCheck::Wrong && !u.disabled) else {
        count_failure(true).await.map_err(bare)?;
        return Err(bare(LoginError::BadCredentials));
    };
    if user.totp_enabled {
        let Some(code) = attempt.totp.map(str::trim).filter(|c| !c.is_empty()) else {
            count_failure(false).await.map_err(bare)?;
            return Err((LoginError::TotpRequired, Some(user)));
        };
        match store::users::use_totp(db, keys, &user, code).await {
            Ok(true) => {}
            Ok(false) => {
                count_failure(true).await.map_err(bare)?;
                return Err((LoginError::TotpWrong, Some(user)));
            }
            Err(e) => return Err(bare(e.into())),
        }
    }
    limiter.clear(&account_key).await.map_err(|e| bare(LoginError::LimiterDown(e)))?;

    let rehash = match check {
        PasswordCheck::OkNeedsRehash => {
            Some(store::users::hash_password(attempt.password).await.map_err(|e| bare(e.into()))?)
        }
        _ => None,
    };
    Ok((user, rehash))
}

/// Why a password-confirmed change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordGuardError {
    #[error("too many wrong passwords; try again in {retry_after_secs} seconds")]
    Limited { retry_after_secs: u64 },
    #[error("the rate limiter is unavailable")]
    LimiterDown(#[source] redis::RedisError),
    #[error(transparent)]
    Core(#[from] Error),
}

/// Runs a change that the user confirms with their current password (`change` answers a
/// validation error on `field` when the password is wrong) under the sign-in limits: a wrong
/// password counts against the account like a failed sign-in, and once the account is limited
/// the change is refused before the password is even checked.
pub async fn password_guarded<T>(
    limiter: &RateLimiter,
    config: &Config,
    user: &users::Model,
    field: &str,
    change: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, PasswordGuardError> {
    let window = Duration::from_secs(config.server.login_limit_window_seconds);
    let key = account_key(&user.email);
    let limit = config.server.login_limit_per_account;
    match limiter.check(&key, limit, window).await.map_err(PasswordGuardError::LimiterDown)? {
        Verdict::Allowed => {}
        Verdict::Limited { retry_after_secs } => return Err(PasswordGuardError::Limited { retry_after_secs }),
    }
    match change.await {
        Err(Error::Validation(fields)) if fields.iter().any(|f| f.field == field) => {
            limiter.hit(&key, limit, window).await.map_err(PasswordGuardError::LimiterDown)?;
            Err(PasswordGuardError::Core(Error::Validation(fields)))
        }
        other => Ok(other?),
    }
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
