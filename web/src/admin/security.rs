//! Sign-in security an administrator manages for others: turning off the second factor of a
//! portal user who lost their authenticator (confirmed with the administrator's password), and
//! clearing a sign-in limit that holds back an address or an account.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use berth_core::auth as core_auth;
use berth_core::store::{self, audit};
use leptos::prelude::*;
use serde::Deserialize;

use super::parse_id;
use crate::auth::PageCtx;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::error::{PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> axum::Router<WebState> {
    axum::Router::new()
        .route("/admin/customers/{id}/users/{user_id}/totp-reset", get(confirm_reset).post(reset))
        .route("/admin/sign-in-limits", get(limits).post(clear_limit))
}

fn reset_body(
    ctx: &PageCtx,
    customer_id: uuid::Uuid,
    email: &str,
    action: String,
    errors: FieldErrors,
) -> impl IntoView {
    view! {
        <section class="panel confirm stack">
            <p class="confirm-question">"Turn off two-factor authentication for " <strong>{email.to_owned()}</strong> "?"</p>
            <p>"They sign in with their password alone and can set up a new authenticator from their account page. Do this only after checking who is asking."</p>
            {error_summary(&errors)}
            <form method="post" action=action class="stack" novalidate>
                {csrf_input(&ctx.csrf)}
                {Field::new("password", "Your password").kind("password").required().autocomplete("current-password").hint("Confirms that it is you making this change.").error(errors.get("password")).render()}
                <div class="actions">
                    <button type="submit" class="button button--danger">"Turn off two-factor authentication"</button>
                    <a class="button button--quiet" href=format!("/admin/customers/{customer_id}")>"Cancel"</a>
                </div>
            </form>
        </section>
    }
}

async fn confirm_reset(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path((id, user_id)): Path<(String, String)>,
) -> PageResult {
    let (id, user_id) = (parse_id(&id)?, parse_id(&user_id)?);
    let users = store::users::list_for_customer(&state.db, &ctx.caller, id).await?;
    let user = users.into_iter().find(|u| u.id == user_id).ok_or(PageError::NotFound)?;
    let action = ctx.path.clone();
    let body = reset_body(&ctx, id, &user.email, action, FieldErrors::none());
    Ok(page(ctx.chrome(), "Reset two-factor authentication", body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    password: String,
}

async fn reset(
    State(state): State<WebState>,
    Path((id, user_id)): Path<(String, String)>,
    PostForm { ctx, form }: PostForm<PasswordForm>,
) -> PageResult {
    let (id, user_id) = (parse_id(&id)?, parse_id(&user_id)?);
    let reset = store::users::reset_totp(&state.db, &ctx.caller, &ctx.user, &form.password, id, user_id);
    let (status, errors) =
        match core_auth::password_guarded(&state.limiter, &state.config, &ctx.user, "password", reset).await {
            Ok(user) => {
                let message = format!("Two-factor authentication is off for {}.", user.email);
                return ctx.redirect(&format!("/admin/customers/{id}"), Flash::success(message)).await;
            }
            Err(core_auth::PasswordGuardError::Core(berth_core::Error::Conflict(message))) => {
                return ctx.redirect(&format!("/admin/customers/{id}"), Flash::error(message)).await;
            }
            Err(core_auth::PasswordGuardError::Core(berth_core::Error::Validation(fields))) => {
                (StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from_fields(fields))
            }
            Err(core_auth::PasswordGuardError::Core(e)) => return Err(e.into()),
            Err(core_auth::PasswordGuardError::Limited { retry_after_secs }) => (
                StatusCode::TOO_MANY_REQUESTS,
                FieldErrors::general(format!(
                    "Too many wrong passwords. Try again in {} minutes.",
                    retry_after_secs.div_ceil(60)
                )),
            ),
            Err(core_auth::PasswordGuardError::LimiterDown(err)) => {
                tracing::error!(error = %err, "Rate limiter unavailable");
                return Err(PageError::Unavailable);
            }
        };
    let users = store::users::list_for_customer(&state.db, &ctx.caller, id).await?;
    let user = users.into_iter().find(|u| u.id == user_id).ok_or(PageError::NotFound)?;
    let body = reset_body(&ctx, id, &user.email, ctx.path.clone(), errors);
    Ok((status, page(ctx.chrome(), "Reset two-factor authentication", body)).into_response())
}

fn limits_body(ctx: &PageCtx, errors: FieldErrors) -> impl IntoView {
    view! {
        <p class="muted">"Failed sign-ins are limited per client address and per account. When someone is locked out after mistyping (or you are, from your own address), clear the limit here. Every clearing is in the audit log."</p>
        {error_summary(&errors)}
        <form method="post" action="/admin/sign-in-limits" class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {Field::new("subject", "Address or e-mail").required().autocomplete("off").hint("An IP address such as 203.0.113.7, or the e-mail of the account.").error(errors.get("subject")).render()}
            <button type="submit" class="button button--secondary">"Clear the limit"</button>
        </form>
    }
}

async fn limits(ctx: PageCtx) -> PageResult {
    Ok(page(ctx.chrome(), "Sign-in limits", limits_body(&ctx, FieldErrors::none())).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClearForm {
    subject: String,
}

async fn clear_limit(State(state): State<WebState>, PostForm { ctx, form }: PostForm<ClearForm>) -> PageResult {
    ctx.caller.require_admin()?;
    let subject = form.subject.trim().to_lowercase();
    let key = if subject.parse::<std::net::IpAddr>().is_ok() {
        core_auth::ip_key(&subject)
    } else if subject.contains('@') {
        core_auth::account_key(&subject)
    } else {
        let errors = FieldErrors::from_fields(vec![berth_core::FieldError::new(
            "subject",
            "is neither an IP address nor an e-mail address",
        )]);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "Sign-in limits", limits_body(&ctx, errors)))
            .into_response());
    };
    state.limiter.clear(&key).await.map_err(|err| {
        tracing::error!(error = %err, "Rate limiter unavailable");
        PageError::Unavailable
    })?;
    audit::record(
        &state.db,
        &ctx.caller,
        audit::Event::new("auth.limit_clear", "sign_in_limit", &subject).details(serde_json::json!({"key": key})),
    )
    .await?;
    ctx.redirect("/admin/sign-in-limits", Flash::success(format!("The sign-in limit of {subject} is cleared."))).await
}
