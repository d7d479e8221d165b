//! Customers: list with search and filters, create, detail (sites, users, audit trail), change
//! plan, suspend/reactivate, delete after confirmation, and adding portal users.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::entities::{customers, flow_runs, plans};
use berth_core::store::{self, page::Page};
use berth_core::types::CustomerStatus;
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use serde::Deserialize;

use super::{audit, parse_id, status_options};
use crate::auth::PageCtx;
use crate::components::confirm::{confirm_body, Confirm};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::site::{site_table, sort_sites, SITE_COLUMNS};
use crate::components::table::{pager, table, Column, Link, Sort};
use crate::components::{badge, when, when_opt};
use crate::error::{PageError, PageResult};
use crate::forms::PostForm;
use crate::layout::page;
use crate::WebState;

pub fn routes() -> axum::Router<WebState> {
    Router::new()
        .route("/admin/customers", get(list))
        .route("/admin/customers/new", get(new_form).post(create))
        .route("/admin/customers/{id}", get(detail))
        .route("/admin/customers/{id}/plan", post(change_plan))
        .route("/admin/customers/{id}/status", post(change_status))
        .route("/admin/customers/{id}/delete", get(confirm_delete).post(delete))
        .route("/admin/customers/{id}/users", post(add_user))
        .route("/admin/customers/{id}/users/{user_id}/access", post(user_access))
}

fn detail_href(id: impl std::fmt::Display) -> String {
    format!("/admin/customers/{id}")
}

fn plan_options(plans: &[plans::Model]) -> Vec<(String, String)> {
    plans.iter().map(|p| (p.id.clone(), format!("{} (up to {} sites)", p.name, p.max_sites))).collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    plan: Option<String>,
    after: Option<String>,
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<ListQuery>) -> PageResult {
    let status =
        q.status.as_deref().filter(|s| !s.is_empty()).and_then(|s| CustomerStatus::try_from_value(&s.to_owned()).ok());
    let plan = q.plan.clone().filter(|p| !p.is_empty());
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let filter = store::customers::Filter { status, plan: plan.clone(), q: q.q.clone() };
    let paged = store::customers::list(&state.db, &ctx.caller, filter, Page { cursor: after, limit: Some(25) }).await?;
    let plans = store::plans::list(&state.db).await?;
    let plan_name = |id: &str| plans.iter().find(|p| p.id == id).map_or(id.to_owned(), |p| p.name.clone());

    let link = Link::new("/admin/customers")
        .param("q", q.q.clone())
        .param("status", status.map(|s| s.to_value()))
        .param("plan", plan.clone());
    let filtered = q.q.as_deref().is_some_and(|s| !s.trim().is_empty()) || status.is_some() || plan.is_some();
    let rows: Vec<AnyView> = paged
        .items
        .iter()
        .map(|c| {
            view! {
                <tr>
                    <td><a href=detail_href(c.id)>{c.company_name.clone()}</a></td>
                    <td>{c.email.clone()}</td>
                    <td>{plan_name(&c.plan_id)}</td>
                    <td>{badge::customer_status(c.status)}</td>
                    <td>{when(&c.created_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let results = if rows.is_empty() {
        let message = if filtered { "No customer matches these filters." } else { "No customers yet." };
        empty_state(message, Some(("New customer", "/admin/customers/new".into()))).into_any()
    } else {
        let columns = [
            Column::plain("Company"),
            Column::plain("E-mail"),
            Column::plain("Plan"),
            Column::plain("Status"),
            Column::plain("Created"),
        ];
        view! {
            <p class="muted">"Newest first."</p>
            {table("Customers", &columns, None, rows)}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let mut plan_choices = vec![(String::new(), "Any plan".to_owned())];
    plan_choices.extend(plans.iter().map(|p| (p.id.clone(), p.name.clone())));
    let body = view! {
        <div class="toolbar">
            <form method="get" action="/admin/customers" class="filters" role="search">
                {Field::new("q", "Search e-mail or company").kind("search").value(q.q.clone().unwrap_or_default()).render()}
                {Field::new("status", "Status").select(status_options::<CustomerStatus>()).value(status.map(|s| s.to_value()).unwrap_or_default()).render()}
                {Field::new("plan", "Plan").select(plan_choices).value(plan.unwrap_or_default()).render()}
                <button type="submit" class="button button--secondary">"Filter"</button>
            </form>
            <a class="button" href="/admin/customers/new">"New customer"</a>
        </div>
        {results}
    };
    Ok(page(ctx.chrome(), "Customers", body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CustomerForm {
    email: String,
    company_name: String,
    plan: String,
}

fn customer_form(ctx: &PageCtx, plans: &[plans::Model], form: CustomerForm, errors: FieldErrors) -> impl IntoView {
    view! {
        {error_summary(&errors)}
        <form method="post" action="/admin/customers/new" class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {Field::new("email", "E-mail").kind("email").value(form.email).required().autocomplete("off").hint("Where Berth sends this customer's notices.").error(errors.get("email")).render()}
            {Field::new("company_name", "Company name").value(form.company_name).required().error(errors.get("company_name")).render()}
            {Field::new("plan", "Plan").select(plan_options(plans)).value(form.plan).required().error(errors.get("plan")).render()}
            <div class="actions">
                <button type="submit" class="button">"Create customer"</button>
                <a class="button button--quiet" href="/admin/customers">"Cancel"</a>
            </div>
        </form>
    }
}

async fn new_form(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    let plans = store::plans::list(&state.db).await?;
    let body = customer_form(&ctx, &plans, CustomerForm::default(), FieldErrors::none());
    Ok(page(ctx.chrome(), "New customer", body).into_response())
}

async fn create(State(state): State<WebState>, PostForm { ctx, form }: PostForm<CustomerForm>) -> PageResult {
    let new = store::customers::NewCustomer {
        email: form.email.clone(),
        company_name: form.company_name.clone(),
        plan: form.plan.clone(),
    };
    let errors = match store::customers::create(&state.db, &ctx.caller, new).await {
        Ok(c) => {
            return ctx
                .redirect(&detail_href(c.id), Flash::success(format!("Customer {} created.", c.company_name)))
                .await;
        }
        Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
        Err(berth_core::Error::Conflict(message)) => FieldErrors::general(message),
        Err(e) => return Err(e.into()),
    };
    let plans = store::plans::list(&state.db).await?;
    let body = customer_form(&ctx, &plans, form, errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "New customer", body)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DetailQuery {
    sort: Option<String>,
    dir: Option<String>,
}

async fn detail(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let id = parse_id(&id)?;
    let customer = store::customers::get(&state.db, &ctx.caller, id).await?;
    let plans = store::plans::list(&state.db).await?;
    let filter = store::sites::Filter { customer_id: Some(id), ..Default::default() };
    // A plan allows a few dozen sites at most: one page holds them all, so sorting is exact.
    let mut sites =
        store::sites::list(&state.db, &ctx.caller, filter, Page { cursor: None, limit: Some(200) }).await?.items;
    let sort = Sort::from_query(q.sort.as_deref(), q.dir.as_deref(), &SITE_COLUMNS, "name");
    sort_sites(&mut sites, &sort);
    let users = store::users::list_for_customer(&state.db, &ctx.caller, id).await?;
    let trail = store::audit::list(
        &state.db,
        &ctx.caller,
        store::audit::Filter { customer_id: Some(id), ..Default::default() },
        Page { cursor: None, limit: Some(15) },
    )
    .await?;
    let runs = customer_runs(&state, &ctx, id).await?;
    let body = detail_body(&ctx, &customer, &plans, &sites, &sort, &users, &runs, &trail.items, FieldErrors::none());
    Ok(page(ctx.chrome(), &customer.company_name, body).into_response())
}

/// The customer's latest flow runs (their onboarding among them), newest first.
async fn customer_runs(
    state: &WebState,
    ctx: &PageCtx,
    id: uuid::Uuid,
) -> Result<Vec<flow_runs::Model>, berth_core::Error> {
    let filter = store::flows::Filter { customer_id: Some(id), ..Default::default() };
    Ok(store::flows::list(&state.db, &ctx.caller, filter, Page { cursor: None, limit: Some(10) }).await?.items)
}

#[allow(clippy::too_many_arguments)]
fn detail_body(
    ctx: &PageCtx,
    c: &customers::Model,
    plans: &[plans::Model],
    sites: &[store::sites::Site],
    sort: &Sort,
    users: &[berth_core::entities::users::Model],
    runs: &[flow_runs::Model],
    trail: &[berth_core::entities::audit_log::Model],
    user_errors: FieldErrors,
) -> impl IntoView {
    let href = detail_href(c.id);
    let plan_name = plans.iter().find(|p| p.id == c.plan_id).map_or(c.plan_id.clone(), |p| p.name.clone());
    let (status_to, status_label) = match c.status {
        CustomerStatus::Active => ("suspended", "Suspend customer"),
        _ => ("active", "Reactivate customer"),
    };
    let new_site = format!("/admin/sites/new?customer={}", c.id);
    let sites_view = if sites.is_empty() {
        empty_state("This customer has no sites yet.", Some(("New site", new_site.clone()))).into_any()
    } else {
        site_table(sites, sort, &Link::new(&href), |s| format!("/admin/sites/{}", s.model.id)).into_any()
    };
    let user_rows: Vec<AnyView> = users
        .iter()
        .map(|u| {
            let action = format!("{href}/users/{}/access", u.id);
            let (value, label) = if u.disabled { ("false", "Enable") } else { ("true", "Disable") };
            let state = if u.disabled {
                badge::badge("disabled".into(), badge::Tone::Bad).into_any()
            } else if u.password_hash.is_none() {
                badge::badge("invited".into(), badge::Tone::Busy).into_any()
            } else {
                badge::badge("active".into(), badge::Tone::Good).into_any()
            };
            view! {
                <tr>
                    <td>{u.email.clone()}</td>
                    <td>{state}</td>
                    <td>
                        {if u.totp_enabled { "on " } else { "off" }}
                        {u.totp_enabled.then(|| view! {
                            <a class="button button--quiet button--small" href=format!("{href}/users/{}/totp-reset", u.id)>"Reset"</a>
                        })}
                    </td>
                    <td>{when_opt(&u.last_login_at)}</td>
                    <td>
                        <form method="post" action=action class="inline">
                            {csrf_input(&ctx.csrf)}
                            <input type="hidden" name="disabled" value=value />
                            <button type="submit" class="button button--quiet button--small">{label}</button>
                        </form>
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let users_view = if user_rows.is_empty() {
        empty_state("No portal users yet: add one below to give this customer access.", None).into_any()
    } else {
        let cols = [
            Column::plain("E-mail"),
            Column::plain("State"),
            Column::plain("Two-factor"),
            Column::plain("Last sign-in"),
            Column::plain("Access"),
        ];
        table("Portal users", &cols, None, user_rows).into_any()
    };
    let audit_href = format!("/admin/audit?customer={}", c.id);
    let runs_view = if runs.is_empty() {
        empty_state("No flow has run for this customer.", None).into_any()
    } else {
        let names = std::iter::once((c.id, c.company_name.clone())).collect();
        super::flows::runs_table(runs, &names).into_any()
    };
    let runs_href = format!("/admin/flows?customer={}", c.id);
    view! {
        <div class="toolbar">
            <a class="button" href=new_site>"New site"</a>
            <a class="button button--danger-quiet" href=format!("{href}/delete")>"Delete customer"</a>
        </div>
        <div class="cards">
            <section class="panel" aria-labelledby="c-details">
                <h2 id="c-details">"Details"</h2>
                <dl class="facts">
                    <dt>"Company"</dt><dd>{c.company_name.clone()}</dd>
                    <dt>"E-mail"</dt><dd>{c.email.clone()}</dd>
                    <dt>"Plan"</dt><dd>{plan_name}</dd>
                    <dt>"Status"</dt><dd>{badge::customer_status(c.status)}</dd>
                    <dt>"Created"</dt><dd>{when(&c.created_at)}</dd>
                </dl>
            </section>
            <section class="panel stack" aria-labelledby="c-plan">
                <h2 id="c-plan">"Plan and status"</h2>
                <form method="post" action=format!("{href}/plan") class="stack">
                    {csrf_input(&ctx.csrf)}
                    {Field::new("plan", "Plan").select(plan_options(plans)).value(c.plan_id.clone()).render()}
                    <button type="submit" class="button button--secondary">"Change plan"</button>
                </form>
                <form method="post" action=format!("{href}/status")>
                    {csrf_input(&ctx.csrf)}
                    <input type="hidden" name="status" value=status_to />
                    <button type="submit" class="button button--secondary">{status_label}</button>
                </form>
            </section>
        </div>
        <section aria-labelledby="c-sites">
            <h2 id="c-sites">"Sites"</h2>
            {sites_view}
        </section>
        <section aria-labelledby="c-flows">
            <h2 id="c-flows">"Flow runs"</h2>
            {runs_view}
            <p><a href=runs_href>"Every flow run of this customer →"</a></p>
        </section>
        <section aria-labelledby="c-users">
            <h2 id="c-users">"Portal users"</h2>
            {users_view}
            {error_summary(&user_errors)}
            <form method="post" action=format!("{href}/users") class="panel inline-form">
                {csrf_input(&ctx.csrf)}
                {Field::new("email", "Add a portal user (e-mail)").kind("email").required().autocomplete("off").hint("They get a one-time link to choose their password.").error(user_errors.get("email")).render()}
                <button type="submit" class="button button--secondary">"Add user"</button>
            </form>
        </section>
        <section aria-labelledby="c-audit">
            <h2 id="c-audit">"Audit trail"</h2>
            {audit::entries_table(trail)}
            <p><a href=audit_href>"Everything about this customer in the audit log →"</a></p>
        </section>
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PlanForm {
    plan: String,
}

async fn change_plan(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<PlanForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let patch = store::customers::Patch { plan: Some(form.plan.clone()), ..Default::default() };
    let flash = match store::customers::update(&state.db, &ctx.caller, id, patch).await {
        Ok(c) => Flash::success(format!("Plan changed to {}.", c.plan_id)),
        Err(berth_core::Error::Validation(fields)) => {
            Flash::error(fields.into_iter().map(|f| f.message).collect::<Vec<_>>().join("; "))
        }
        Err(e) => return Err(e.into()),
    };
    ctx.redirect(&detail_href(id), flash).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusForm {
    status: String,
}

async fn change_status(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<StatusForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let status = CustomerStatus::try_from_value(&form.status)
        .map_err(|_| PageError::BadRequest(format!("unknown status {}", form.status)))?;
    let patch = store::customers::Patch { status: Some(status), ..Default::default() };
    let c = store::customers::update(&state.db, &ctx.caller, id, patch).await?;
    let message = match c.status {
        CustomerStatus::Suspended => "Customer suspended.",
        _ => "Customer reactivated.",
    };
    ctx.redirect(&detail_href(id), Flash::success(message)).await
}

async fn confirm_delete(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let c = store::customers::get(&state.db, &ctx.caller, id).await?;
    let body = confirm_body(Confirm {
        question: format!("Delete the customer {} ({})?", c.company_name, c.email),
        detail: Some(
            "This cannot be undone. A customer who still has sites cannot be deleted: delete the sites first.".into(),
        ),
        action: format!("{}/delete", detail_href(id)),
        button: "Delete customer",
        cancel_href: detail_href(id),
        csrf: ctx.csrf.clone(),
    });
    Ok(page(ctx.chrome(), "Delete customer", body).into_response())
}

async fn delete(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<crate::auth::NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    match store::customers::delete(&state.db, &ctx.caller, id).await {
        Ok(()) => ctx.redirect("/admin/customers", Flash::success("Customer deleted.")).await,
        Err(berth_core::Error::Conflict(message)) => ctx.redirect(&detail_href(id), Flash::error(message)).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserForm {
    email: String,
}

/// Adds a portal user. The one-time link is shown on the answer page itself, never stored in
/// the session, and cannot be shown again.
async fn add_user(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<UserForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let errors = match store::users::create_customer_user(&state.db, &ctx.caller, id, &form.email, None).await {
        Ok((user, link)) => {
            let link = link.map(|t| state.config.server.public_link(&format!("/set-password?token={t}")));
            let body = view! {
                <div class="flash flash--success" role="status">"Portal user " <strong>{user.email.clone()}</strong> " added."</div>
                <section class="panel stack">
                    <p>"Send this one-time link to the user. It lets them choose a password, works once, expires after "
                        {store::users::PASSWORD_LINK_TTL_HOURS} " hours, and will not be shown again."</p>
                    <p><code class="secret" id="set-password-link">{link}</code></p>
                    <p><a class="button" href=detail_href(id)>"Back to the customer"</a></p>
                </section>
            };
            return Ok(page(ctx.chrome(), "Portal user added", body).into_response());
        }
        Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
        Err(berth_core::Error::Conflict(message)) => FieldErrors::general(message),
        Err(e) => return Err(e.into()),
    };
    let customer = store::customers::get(&state.db, &ctx.caller, id).await?;
    let plans = store::plans::list(&state.db).await?;
    let filter = store::sites::Filter { customer_id: Some(id), ..Default::default() };
    let sites =
        store::sites::list(&state.db, &ctx.caller, filter, Page { cursor: None, limit: Some(200) }).await?.items;
    let users = store::users::list_for_customer(&state.db, &ctx.caller, id).await?;
    let sort = Sort::from_query(None, None, &SITE_COLUMNS, "name");
    let runs = customer_runs(&state, &ctx, id).await?;
    let body = detail_body(&ctx, &customer, &plans, &sites, &sort, &users, &runs, &[], errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), &customer.company_name, body)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessForm {
    disabled: String,
}

async fn user_access(
    State(state): State<WebState>,
    Path((id, user_id)): Path<(String, String)>,
    PostForm { ctx, form }: PostForm<AccessForm>,
) -> PageResult {
    let (id, user_id) = (parse_id(&id)?, parse_id(&user_id)?);
    let disabled = form.disabled == "true";
    let user = store::users::set_disabled(&state.db, &ctx.caller, id, user_id, disabled).await?;
    let message = if disabled {
        format!("{} disabled: their sessions and API tokens no longer work.", user.email)
    } else {
        format!("{} enabled.", user.email)
    };
    ctx.redirect(&detail_href(id), Flash::success(message)).await
}
