//! The signed-in user's own account, the same in both areas (`/admin/account`,
//! `/portal/account`): password, two-factor authentication, API tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::auth as core_auth;
use berth_core::store;
use leptos::prelude::*;
use serde::Deserialize;

use crate::auth::{NoFields, PageCtx};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::table::{table, Column};
use crate::components::{badge, qr, when, when_opt};
use crate::error::{PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    let mut router = Router::new();
    for base in ["/admin/account", "/portal/account"] {
        router = router
            .route(base, get(show))
            .route(&format!("{base}/password"), post(change_password))
            .route(&format!("{base}/totp"), post(begin_totp))
            .route(&format!("{base}/totp/confirm"), post(confirm_totp))
            .route(&format!("{base}/totp/disable"), post(disable_totp))
            .route(&format!("{base}/tokens"), post(create_token))
            .route(&format!("{base}/tokens/{{id}}/revoke"), post(revoke_token));
    }
    router
}

fn base(ctx: &PageCtx) -> String {
    ctx.area.path("/account")
}

/// Which section of the page came back with errors.
#[derive(Default)]
struct Errors {
    password: FieldErrors,
    totp: FieldErrors,
    token: FieldErrors,
}

/// A password-confirmed change's refusal as the form's errors and status: a wrong password is a
/// field error (422), too many of them the sign-in limit's message (429).
fn guard_errors(e: core_auth::PasswordGuardError) -> Result<(StatusCode, FieldErrors), PageError> {
    match e {
        core_auth::PasswordGuardError::Core(berth_core::Error::Validation(fields)) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from_fields(fields)))
        }
        core_auth::PasswordGuardError::Core(e) => Err(e.into()),
        core_auth::PasswordGuardError::Limited { retry_after_secs } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            FieldErrors::general(format!(
                "Too many wrong passwords. Try again in {} minutes.",
                retry_after_secs.div_ceil(60)
            )),
        )),
        core_auth::PasswordGuardError::LimiterDown(err) => {
            tracing::error!(error = %err, "Rate limiter unavailable");
            Err(PageError::Unavailable)
        }
    }
}

async fn account_page(state: &WebState, ctx: &PageCtx, errors: Errors) -> Result<impl IntoView, PageError> {
    let tokens = store::tokens::list(&state.db, &ctx.caller).await?;
    let base = base(ctx);
    let totp_errors = &errors.totp;
    let totp = if ctx.user.totp_enabled {
        view! {
            <p>{badge::badge("on".into(), badge::Tone::Good)} " Sign-in asks for a code from your authenticator app."</p>
            {error_summary(totp_errors)}
            <form method="post" action=format!("{base}/totp/disable") class="stack" novalidate>
                {csrf_input(&ctx.csrf)}
                {Field::new("password", "Current password").kind("password").required().autocomplete("current-password").hint("Turning it off means sign-in asks for your password only.").error(totp_errors.get("password")).render()}
                <button type="submit" class="button button--danger">"Turn off two-factor authentication"</button>
            </form>
        }
        .into_any()
    } else {
        view! {
            <p>{badge::badge("off".into(), badge::Tone::Neutral)} " Add a code from an authenticator app to every sign-in."</p>
            {error_summary(totp_errors)}
            <form method="post" action=format!("{base}/totp") class="stack" novalidate>
                {csrf_input(&ctx.csrf)}
                {Field::new("password", "Current password").kind("password").required().autocomplete("current-password").error(totp_errors.get("password")).render()}
                <button type="submit" class="button button--secondary">"Set up two-factor authentication"</button>
            </form>
        }
        .into_any()
    };
    let token_rows: Vec<AnyView> = tokens
        .iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                badge::badge("revoked".into(), badge::Tone::Neutral).into_any()
            } else {
                badge::badge("active".into(), badge::Tone::Good).into_any()
            };
            let revoke = t.revoked_at.is_none().then(|| {
                view! {
                    <form method="post" action=format!("{base}/tokens/{}/revoke", t.id) class="inline">
                        {csrf_input(&ctx.csrf)}
                        <button type="submit" class="button button--quiet button--small">"Revoke " <span class="visually-hidden">{t.name.clone()}</span></button>
                    </form>
                }
            });
            view! {
                <tr>
                    <td>{t.name.clone()}</td>
                    <td><code>{format!("{}…", t.prefix)}</code></td>
                    <td>{when(&t.created_at)}</td>
                    <td>{when_opt(&t.last_used_at)}</td>
                    <td>{state}</td>
                    <td>{revoke}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let tokens_view = if token_rows.is_empty() {
        empty_state("No API tokens yet.", None).into_any()
    } else {
        let cols = [
            Column::plain("Name"),
            Column::plain("Starts with"),
            Column::plain("Created"),
            Column::plain("Last used"),
            Column::plain("State"),
            Column::plain("Action"),
        ];
        table("API tokens", &cols, None, token_rows).into_any()
    };
    let Errors { password, token, .. } = errors;
    Ok(view! {
        <p class="muted">"Signed in as " <strong>{ctx.user.email.clone()}</strong> "."</p>
        <div class="cards">
            <section class="panel stack" aria-labelledby="a-password">
                <h2 id="a-password">"Password"</h2>
                {error_summary(&password)}
                <form method="post" action=format!("{base}/password") class="stack" novalidate>
                    {csrf_input(&ctx.csrf)}
                    {Field::new("current_password", "Current password").kind("password").required().autocomplete("current-password").error(password.get("current_password")).render()}
                    {Field::new("new_password", "New password").kind("password").required().autocomplete("new-password").hint("At least 8 characters. Your other sessions end when it changes.").error(password.get("new_password")).render()}
                    <button type="submit" class="button button--secondary">"Change password"</button>
                </form>
            </section>
            <section class="panel stack" aria-labelledby="a-totp">
                <h2 id="a-totp">"Two-factor authentication"</h2>
                {totp}
            </section>
        </div>
        <section aria-labelledby="a-tokens">
            <h2 id="a-tokens">"API tokens"</h2>
            <p class="muted">"A token acts as you on the REST API (" <code>"Authorization: Bearer …"</code> ")."</p>
            {tokens_view}
            {error_summary(&token)}
            <form method="post" action=format!("{base}/tokens") class="panel inline-form">
                {csrf_input(&ctx.csrf)}
                {Field::new("name", "New token name").required().autocomplete("off").hint("What the token is for, e.g. deploy script.").error(token.get("name")).render()}
                <button type="submit" class="button button--secondary">"Create token"</button>
            </form>
        </section>
    })
}

async fn show(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    let body = account_page(&state, &ctx, Errors::default()).await?;
    Ok(page(ctx.chrome(), "Account", body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn change_password(State(state): State<WebState>, PostForm { ctx, form }: PostForm<PasswordForm>) -> PageResult {
    let change = store::users::change_password(
        &state.db,
        &ctx.caller,
        ctx.user.clone(),
        &form.current_password,
        &form.new_password,
    );
    match core_auth::password_guarded(&state.limiter, &state.config, &ctx.user, "current_password", change).await {
        Ok(user) => {
            // The epoch bump ended every session of the user; this one goes on under a new id.
            core_auth::start_session(&ctx.session, &user).await?;
            ctx.redirect(&base(&ctx), Flash::success("Password changed. Your other sessions have ended.")).await
        }
        Err(e) => {
            let (status, password) = guard_errors(e)?;
            let body = account_page(&state, &ctx, Errors { password, ..Default::default() }).await?;
            Ok((status, page(ctx.chrome(), "Account", body)).into_response())
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfirmPasswordForm {
    password: String,
}

/// The account page again, with the two-factor section's errors.
async fn totp_refused(state: &WebState, ctx: &PageCtx, e: core_auth::PasswordGuardError) -> PageResult {
    if let core_auth::PasswordGuardError::Core(berth_core::Error::Conflict(message)) = e {
        return ctx.redirect(&base(ctx), Flash::error(message)).await;
    }
    let (status, totp) = guard_errors(e)?;
    let body = account_page(state, ctx, Errors { totp, ..Default::default() }).await?;
    Ok((status, page(ctx.chrome(), "Account", body)).into_response())
}

async fn disable_totp(
    State(state): State<WebState>,
    PostForm { ctx, form }: PostForm<ConfirmPasswordForm>,
) -> PageResult {
    let disable = store::users::disable_totp(&state.db, &ctx.caller, ctx.user.clone(), &form.password);
    match core_auth::password_guarded(&state.limiter, &state.config, &ctx.user, "password", disable).await {
        Ok(_) => {
            ctx.redirect(
                &base(&ctx),
                Flash::success("Two-factor authentication is off. Sign-in asks for your password only."),
            )
            .await
        }
        Err(e) => totp_refused(&state, &ctx, e).await,
    }
}

fn totp_confirm_page(ctx: &PageCtx, uri: Option<String>, errors: FieldErrors) -> impl IntoView {
    let base = base(ctx);
    let setup = uri.map(|uri| {
        let svg = qr::svg(&uri).unwrap_or_default();
        view! {
            <ol class="steps">
                <li>"Scan this code with your authenticator app:"</li>
            </ol>
            <figure class="qr" role="img" aria-label="QR code of the authenticator set-up link" inner_html=svg></figure>
            <details>
                <summary>"Can't scan it? Enter the set-up link by hand"</summary>
                <p><code class="secret" id="otpauth-uri">{uri}</code></p>
            </details>
        }
    });
    view! {
        <section class="panel stack">
            {setup}
            {error_summary(&errors)}
            <form method="post" action=format!("{base}/totp/confirm") class="stack" novalidate>
                {csrf_input(&ctx.csrf)}
                {Field::new("code", "Code shown by the app").numeric().required().autocomplete("one-time-code").hint("6 digits. Two-factor authentication is on once this code is accepted.").error(errors.get("code")).render()}
                <div class="actions">
                    <button type="submit" class="button">"Turn on two-factor authentication"</button>
                    <a class="button button--quiet" href=base.clone()>"Cancel"</a>
                </div>
            </form>
        </section>
    }
}

async fn begin_totp(
    State(state): State<WebState>,
    PostForm { ctx, form }: PostForm<ConfirmPasswordForm>,
) -> PageResult {
    let begin = store::users::begin_totp(&state.db, &state.keys, ctx.user.clone(), &form.password);
    match core_auth::password_guarded(&state.limiter, &state.config, &ctx.user, "password", begin).await {
        Ok(uri) => {
            let body = totp_confirm_page(&ctx, Some(uri), FieldErrors::none());
            Ok(page(ctx.chrome(), "Set up two-factor authentication", body).into_response())
        }
        Err(e) => totp_refused(&state, &ctx, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

async fn confirm_totp(State(state): State<WebState>, PostForm { ctx, form }: PostForm<CodeForm>) -> PageResult {
    match store::users::confirm_totp(&state.db, &state.keys, &ctx.caller, ctx.user.clone(), &form.code).await {
        Ok(_) => {
            ctx.redirect(&base(&ctx), Flash::success("Two-factor authentication is on. Sign-in will ask for a code."))
                .await
        }
        Err(berth_core::Error::Validation(fields)) => {
            // The secret stays sealed in the database and is not shown again; the app that
            // scanned it already has it.
            let body = totp_confirm_page(&ctx, None, FieldErrors::from_fields(fields));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "Set up two-factor authentication", body))
                .into_response())
        }
        Err(berth_core::Error::Conflict(message)) => ctx.redirect(&base(&ctx), Flash::error(message)).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    name: String,
}

/// The token is shown on this answer page only: it is stored hashed and cannot be shown again.
async fn create_token(State(state): State<WebState>, PostForm { ctx, form }: PostForm<TokenForm>) -> PageResult {
    match store::tokens::create(&state.db, &ctx.caller, &ctx.user, &form.name).await {
        Ok((model, token)) => {
            let body = view! {
                <div class="flash flash--success" role="status">"Token " <strong>{model.name.clone()}</strong> " created."</div>
                <section class="panel stack">
                    <p>"Copy the token now: it is shown only once and cannot be recovered."</p>
                    <p><code class="secret" id="new-token">{token}</code></p>
                    <p><a class="button" href=base(&ctx)>"Back to your account"</a></p>
                </section>
            };
            Ok(page(ctx.chrome(), "API token created", body).into_response())
        }
        Err(berth_core::Error::Validation(fields)) => {
            let errors = Errors { token: FieldErrors::from_fields(fields), ..Default::default() };
            let body = account_page(&state, &ctx, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "Account", body)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_token(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = crate::admin::parse_id(&id)?;
    store::tokens::revoke(&state.db, &ctx.caller, id).await?;
    ctx.redirect(&base(&ctx), Flash::success("Token revoked.")).await
}
