//! Berth's server-rendered pages. Today: the landing page and the set-password page that
//! one-time links point to; the admin console and customer portal grow here. Every page works
//! without JavaScript: forms post back and the server answers with a page.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_core::access::Caller;
use berth_core::config::Config;
use berth_core::store;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

/// What the pages need from the server.
#[derive(Clone)]
pub struct WebState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/set-password", get(set_password_form).post(set_password))
        .with_state(state)
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2933}\
h1{font-size:1.6rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}\
input{width:100%;padding:.5rem;font-size:1rem;border:1px solid #9aa5b1;border-radius:4px;box-sizing:border-box}\
button{margin-top:1rem;padding:.55rem 1.2rem;font-size:1rem;background:#1f6feb;color:#fff;border:0;border-radius:4px}\
.error{color:#b42318;background:#fef3f2;padding:.6rem;border-radius:4px}.ok{color:#05603a;background:#ecfdf3;padding:.6rem;border-radius:4px}\
code{background:#f0f4f8;padding:.1rem .3rem;border-radius:3px}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Berth</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    ))
}

async fn home() -> Html<String> {
    page(
        "Berth",
        "<h1>Berth</h1><p>This Berth control plane is running.</p>\
         <p>The REST API lives under <code>/api/v1</code>; its OpenAPI document is at \
         <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a>. \
         Health: <a href=\"/healthz\"><code>/healthz</code></a>, <a href=\"/readyz\"><code>/readyz</code></a>.</p>",
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn set_password_page(token: &str, error: Option<&str>) -> Html<String> {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    page(
        "Choose your password",
        &format!(
            "<h1>Choose your password</h1>{error}\
             <form method=\"post\" action=\"/set-password\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label for=\"password\">New password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" maxlength=\"128\" required>\
             <p><small>At least 8 characters; very common passwords are refused.</small></p>\
             <button type=\"submit\">Set password</button></form>",
            escape(token)
        ),
    )
}

async fn set_password_form(Query(q): Query<TokenQuery>) -> Response {
    match q.token.filter(|t| !t.is_empty()) {
        Some(token) => set_password_page(&token, None).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            page("Link incomplete", "<h1>This link is incomplete</h1><p>Open the whole link from your e-mail.</p>"),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct SetPasswordForm {
    token: String,
    password: String,
}

async fn set_password(State(state): State<WebState>, Form(form): Form<SetPasswordForm>) -> Response {
    let caller = Caller::system("set-password-link");
    match store::users::set_password_with_token(&state.db, &caller, &form.token, &form.password).await {
        Ok(user) => page(
            "Password set",
            &format!(
                "<h1>Password set</h1><p class=\"ok\">You can now sign in as <strong>{}</strong>.</p>",
                escape(&user.email)
            ),
        )
        .into_response(),
        Err(berth_core::Error::Validation(errors)) => {
            let message = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
            let message = message.replace("token: ", "").replace("password: ", "Password ");
            (StatusCode::UNPROCESSABLE_ENTITY, set_password_page(&form.token, Some(&message))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "Set-password page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                set_password_page(&form.token, Some("Something went wrong; try again shortly.")),
            )
                .into_response()
        }
    }
}
