//! Pages for visitors who are not signed in: the start page and the page one-time
//! set-password links point to.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_core::access::Caller;
use berth_core::store;
use leptos::prelude::*;
use serde::Deserialize;

use crate::components::form::{error_summary, Field, FieldErrors};
use crate::error::PageError;
use crate::layout::plain_page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/", get(home)).route("/set-password", get(set_password_form).post(set_password))
}

async fn home() -> Html<String> {
    plain_page(
        "Berth",
        view! {
            <p>"This Berth control plane is running."</p>
            <div class="choice">
                <a class="panel choice-card" href="/portal/login">
                    <strong>"Customer portal"</strong>
                    <span>"Your sites, your account and your API tokens."</span>
                </a>
                <a class="panel choice-card" href="/admin/login">
                    <strong>"Admin console"</strong>
                    <span>"For the hosting team: customers, sites and the audit log."</span>
                </a>
            </div>
            <p class="muted">
                "The REST API lives under " <code>"/api/v1"</code> "; its OpenAPI document is at "
                <a href="/api/v1/openapi.json"><code>"/api/v1/openapi.json"</code></a> ". Health: "
                <a href="/healthz"><code>"/healthz"</code></a> ", " <a href="/readyz"><code>"/readyz"</code></a> "."
            </p>
        },
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn set_password_page(token: String, errors: FieldErrors) -> Html<String> {
    plain_page(
        "Choose your password",
        view! {
            {error_summary(&errors)}
            <form method="post" action="/set-password" class="panel stack">
                <input type="hidden" name="token" value=token />
                {Field::new("password", "New password")
                    .kind("password")
                    .required()
                    .autocomplete("new-password")
                    .hint("At least 8 characters; very common passwords are refused.")
                    .error(errors.get("password"))
                    .render()}
                <button type="submit" class="button">"Set password"</button>
            </form>
        },
    )
}

async fn set_password_form(Query(q): Query<TokenQuery>) -> Response {
    match q.token.filter(|t| !t.is_empty()) {
        Some(token) => set_password_page(token, FieldErrors::none()).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            plain_page("This link is incomplete", view! { <p>"Open the whole link from your e-mail."</p> }),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct SetPasswordForm {
    token: String,
    password: String,
}

/// No CSRF token here: nobody is signed in, and the link's token is itself the secret.
async fn set_password(State(state): State<WebState>, Form(form): Form<SetPasswordForm>) -> Response {
    let caller = Caller::system("set-password-link");
    match store::users::set_password_with_token(&state.db, &caller, &form.token, &form.password).await {
        Ok(user) => plain_page(
            "Password set",
            view! {
                <div class="flash flash--success" role="status">
                    "You can now sign in as " <strong>{user.email}</strong> "."
                </div>
                <p><a class="button" href="/portal/login">"Sign in"</a></p>
            },
        )
        .into_response(),
        Err(berth_core::Error::Validation(fields)) => {
            // The token's error has no field on this form: it belongs in the summary.
            let (token, fields): (Vec<_>, Vec<_>) = fields.into_iter().partition(|f| f.field == "token");
            let mut errors = FieldErrors::from_fields(fields);
            errors.general.extend(
                token.into_iter().map(|f| format!("This link {}.", f.message.trim_start_matches("this link "))),
            );
            (StatusCode::UNPROCESSABLE_ENTITY, set_password_page(form.token, errors)).into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}
