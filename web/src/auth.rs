//! Signing in and out of the UI, and who is asking on every signed-in page.
//!
//! The UI uses the same login procedure (rate limits, generic failure message, TOTP) and the
//! same session cookie as the REST API: both come from `berth_core::auth`. A page handler
//! takes a [`PageCtx`], which resolves the session to a user and a [`Caller`], enforces the
//! area (a customer on an admin page gets the not-found page; an admin on a portal page is sent
//! to the console), and carries the session's CSRF token for the page's forms.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use berth_core::access::Caller;
use berth_core::auth::{self as core_auth, LoginError};
use berth_core::entities::users;
use berth_core::store::audit;
use berth_core::types::Role;
use berth_core::{crypto, FieldError};
use leptos::prelude::*;
use serde::Deserialize;
use tower_sessions::Session;

use crate::components::flash::{flash_banner, Flash};
use crate::components::form::{error_summary, Field, FieldErrors};
use crate::error::{PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::{plain_page, Area, Chrome};
use crate::WebState;

const FLASH_KEY: &str = "ui_flash";
const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/login", get(login_form).post(login))
        .route("/portal/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

/// The area a user belongs to.
pub fn home_area(user: &users::Model) -> Area {
    match user.role {
        Role::Admin => Area::Admin,
        Role::Customer => Area::Portal,
    }
}

/// The client address, resolved like the API does (trusted proxies only).
fn client_ip(parts: &Parts, state: &WebState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    berth_core::net::client_ip(peer, forwarded, &state.config.server.trusted_proxies)
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn session_of(parts: &mut Parts, state: &WebState) -> Result<Session, PageError> {
    Session::from_request_parts(parts, state).await.map_err(|(_, message)| {
        tracing::error!(error = message, "The page router runs without the session layer");
        PageError::Unavailable
    })
}

/// A signed-in page request.
pub struct PageCtx {
    pub user: users::Model,
    /// The tenant-scoped identity every store call takes.
    pub caller: Caller,
    pub session: Session,
    pub csrf: String,
    pub area: Area,
    pub path: String,
    /// The message left by the previous request (GET pages only).
    pub flash: Option<Flash>,
}

impl PageCtx {
    pub fn chrome(&self) -> Chrome {
        Chrome {
            area: self.area,
            email: self.user.email.clone(),
            csrf: self.csrf.clone(),
            path: self.path.clone(),
            flash: self.flash.clone(),
        }
    }

    /// Redirects (303) to `to`, showing `flash` on the page it lands on.
    pub async fn redirect(&self, to: &str, flash: Flash) -> PageResult {
        self.session.insert(FLASH_KEY, flash).await?;
        Ok(Redirect::to(to).into_response())
    }
}

impl FromRequestParts<WebState> for PageCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, PageError> {
        let path_area = Area::from_path(parts.uri.path());
        let session = session_of(parts, state).await?;
        let user = match core_auth::session_user(&state.db, &session).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(PageError::SignIn(path_area.unwrap_or(Area::Portal))),
            Err(core_auth::SessionError::Store(e)) => return Err(e.into()),
            Err(core_auth::SessionError::Core(e)) => return Err(e.into()),
        };
        let own = home_area(&user);
        match (path_area, own) {
            // The same answer as for a missing page: nothing tells a customer what is there.
            (Some(Area::Admin), Area::Portal) => return Err(PageError::NotFound),
            (Some(Area::Portal), Area::Admin) => return Err(PageError::Elsewhere(Area::Admin)),
            _ => {}
        }
        let csrf = core_auth::csrf_token(&session).await?.ok_or(PageError::SignIn(own))?;
        let flash = if parts.method == Method::GET { session.remove::<Flash>(FLASH_KEY).await? } else { None };
        let caller =
            Caller::user(&user).with_request(Some(client_ip(parts, state).to_string()), request_id(&parts.headers));
        Ok(PageCtx { user, caller, session, csrf, area: own, path: parts.uri.path().to_owned(), flash })
    }
}

/// The sign-in form's CSRF protection without a session: a signed double-submit cookie. The
/// form carries a random token, and the cookie carries the same token with its signature (HMAC
/// under a key derived from the secret key), so a visitor who is not signed in costs the server
/// no session at all, and a cookie planted by a neighbouring subdomain does not verify.
pub const LOGIN_CSRF_COOKIE: &str = "berth_login_csrf";
const LOGIN_CSRF_CONTEXT: &str = "login-csrf";
/// Long enough to type a password, short enough that a stale form asks again.
const LOGIN_CSRF_MAX_AGE_MINUTES: i64 = 120;

fn login_csrf_cookie(state: &WebState, value: String, max_age: tower_sessions::cookie::time::Duration) -> String {
    tower_sessions::cookie::Cookie::build((LOGIN_CSRF_COOKIE, value))
        .path("/")
        .http_only(true)
        .secure(state.config.server.cookie_secure())
        .same_site(tower_sessions::cookie::SameSite::Lax)
        .max_age(max_age)
        .build()
        .to_string()
}

/// The token of a valid sign-in CSRF cookie, if the request has one.
fn login_csrf_of(headers: &HeaderMap, state: &WebState) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| tower_sessions::cookie::Cookie::parse(c.trim().to_owned()).ok())
        .filter(|c| c.name() == LOGIN_CSRF_COOKIE)
        .find_map(|c| {
            let (token, signature) = c.value().split_once('.')?;
            state.keys.verify(LOGIN_CSRF_CONTEXT, token, signature).then(|| token.to_owned())
        })
}

/// The sign-in form's token, and the `Set-Cookie` that goes with it: the visitor's valid
/// cookie is kept (two tabs keep working), otherwise a new one is issued.
fn login_csrf(headers: &HeaderMap, state: &WebState) -> (String, String) {
    let token = login_csrf_of(headers, state).unwrap_or_else(|| crypto::random_token(""));
    let signed = format!("{token}.{}", state.keys.sign(LOGIN_CSRF_CONTEXT, &token));
    (
        token,
        login_csrf_cookie(state, signed, tower_sessions::cookie::time::Duration::minutes(LOGIN_CSRF_MAX_AGE_MINUTES)),
    )
}

/// What the sign-in page shows around its form.
#[derive(Default)]
struct LoginView {
    email: String,
    errors: FieldErrors,
    notice: Option<Flash>,
}

fn login_page(area: Area, csrf: String, v: LoginView) -> axum::response::Html<String> {
    let LoginView { email, errors, notice } = v;
    let title = format!("Sign in to the {}", area.title().to_lowercase());
    plain_page(
        &title,
        view! {
            {flash_banner(notice)}
            {error_summary(&errors)}
            <form method="post" action=area.login() class="panel stack">
                <input type="hidden" name="csrf_token" value=csrf />
                {Field::new("email", "E-mail")
                    .kind("email")
                    .value(email)
                    .required()
                    .autocomplete("username")
                    .error(errors.get("email"))
                    .render()}
                {Field::new("password", "Password")
                    .kind("password")
                    .required()
                    .autocomplete("current-password")
                    .error(errors.get("password"))
                    .render()}
                {Field::new("totp", "Authentication code")
                    .numeric()
                    .autocomplete("one-time-code")
                    .hint("Only if two-factor authentication is on for your account.")
                    .error(errors.get("totp"))
                    .render()}
                <button type="submit" class="button">"Sign in"</button>
            </form>
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    signed_out: Option<String>,
}

/// The sign-in page. It reads the session (a signed-in visitor goes home) but never writes
/// one: the form is protected by the signed CSRF cookie, and the session starts at sign-in.
async fn login_form(
    State(state): State<WebState>,
    session: Session,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> PageResult {
    let area = Area::from_path(uri.path()).unwrap_or(Area::Portal);
    if let Ok(Some(user)) = core_auth::session_user(&state.db, &session).await {
        return Ok(Redirect::to(home_area(&user).home()).into_response());
    }
    let (csrf, cookie) = login_csrf(&headers, &state);
    let notice = q.signed_out.map(|_| Flash::success("You have signed out."));
    Ok(([(header::SET_COOKIE, cookie)], login_page(area, csrf, LoginView { notice, ..Default::default() }))
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    csrf_token: String,
    email: String,
    password: String,
    totp: String,
}

/// A sign-in POSTed from another site's form would sign the victim into the attacker's
/// account; browsers send Origin on form posts, so a foreign one is refused.
fn same_origin(headers: &HeaderMap, state: &WebState) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let public = state.config.server.public_url.origin().ascii_serialization();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    origin == public || host.is_some_and(|h| origin.split("://").nth(1) == Some(h))
}

async fn login(
    State(state): State<WebState>,
    session: Session,
    uri: axum::http::Uri,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let area = Area::from_path(uri.path()).unwrap_or(Area::Portal);
    let cookie_token = login_csrf_of(&headers, &state);
    let matches = cookie_token.is_some_and(|t| crypto::secure_eq(t.as_bytes(), form.csrf_token.as_bytes()));
    if !same_origin(&headers, &state) || !matches {
        return Err(PageError::CsrfFailed);
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let ip = berth_core::net::client_ip(peer.ip(), forwarded, &state.config.server.trusted_proxies);
    let attempt = core_auth::Attempt {
        email: &form.email,
        password: &form.password,
        totp: Some(form.totp.as_str()),
        ip,
        request_id: request_id(&headers),
    };
    let again = |status: StatusCode, errors: FieldErrors| {
        let (csrf, cookie) = login_csrf(&headers, &state);
        let v = LoginView { email: form.email.clone(), errors, notice: None };
        async move {
            Ok::<_, PageError>((status, [(header::SET_COOKIE, cookie)], login_page(area, csrf, v)).into_response())
        }
    };
    let user = match core_auth::login(&state.db, &state.keys, &state.limiter, &state.config, attempt).await {
        Ok(user) => user,
        Err(LoginError::BadCredentials) => {
            return again(StatusCode::UNAUTHORIZED, FieldErrors::general("Wrong e-mail or password.")).await;
        }
        Err(LoginError::TotpRequired) => {
            let e = FieldError::new("totp", "Enter the 6-digit code from your authenticator app.");
            return again(StatusCode::UNAUTHORIZED, FieldErrors::from_fields(vec![e])).await;
        }
        Err(LoginError::TotpWrong) => {
            let e = FieldError::new("totp", "This is not the current code from your authenticator app.");
            return again(StatusCode::UNAUTHORIZED, FieldErrors::from_fields(vec![e])).await;
        }
        Err(LoginError::Limited { retry_after_secs }) => {
            let at = chrono::Utc::now() + chrono::Duration::seconds(retry_after_secs as i64);
            let message = format!(
                "Too many sign-in attempts. Try again in {} (after {}), or ask an administrator to clear the limit.",
                wait_text(retry_after_secs),
                at.format("%H:%M:%S UTC")
            );
            return again(StatusCode::TOO_MANY_REQUESTS, FieldErrors::general(message)).await;
        }
        Err(LoginError::LimiterDown(err)) => {
            tracing::error!(error = %err, "Rate limiter unavailable");
            return Err(PageError::Unavailable);
        }
        Err(LoginError::Core(err)) => return Err(err.into()),
    };
    core_auth::start_session(&session, &user).await?;
    // The form's token has done its job; the session carries its own from here.
    let spent = login_csrf_cookie(&state, String::new(), tower_sessions::cookie::time::Duration::ZERO);
    Ok(([(header::SET_COOKIE, spent)], Redirect::to(home_area(&user).home())).into_response())
}

fn wait_text(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".to_owned(),
        2..=90 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoFields {}

async fn logout(State(state): State<WebState>, PostForm { ctx, .. }: PostForm<NoFields>) -> PageResult {
    audit::record(
        &state.db,
        &ctx.caller,
        audit::Event::new("auth.logout", "user", ctx.user.id).customer(ctx.user.customer_id),
    )
    .await?;
    ctx.session.flush().await?;
    Ok(Redirect::to(&format!("{}?signed_out=1", ctx.area.login())).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_are_written_for_people() {
        assert_eq!(super::wait_text(1), "1 second");
        assert_eq!(super::wait_text(45), "45 seconds");
        assert_eq!(super::wait_text(900), "15 minutes");
    }
}
