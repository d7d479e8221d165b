//! Sites across all customers: list with filters, create for a customer, detail, edit, delete
//! after confirmation.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::entities::customers;
use berth_core::store::{self, page::Page, sites::Site};
use berth_core::types::SiteStatus;
use berth_core::FieldError;
use berth_ops::Error::Store;
use leptos::prelude::*;
use sea_orm::ActiveEnum;
use serde::Deserialize;
use uuid::Uuid;

use super::{parse_id, status_options};
use crate::auth::PageCtx;
use crate::components::confirm::{confirm_body, Confirm};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::site::site_facts;
use crate::components::table::{pager, table, Column, Link};
use crate::components::{badge, when};
use crate::error::{page_error, PageResult};
use crate::forms::{parse_domains, parse_env, PostForm};
use crate::layout::{page, page_refreshing};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/sites", get(list))
        .route("/admin/sites/new", get(new_form).post(create))
        .route("/admin/sites/{id}", get(detail))
        .route("/admin/sites/{id}/edit", get(edit_form).post(update))
        .route("/admin/sites/{id}/delete", get(confirm_delete).post(delete))
}

fn detail_href(id: impl std::fmt::Display) -> String {
    format!("/admin/sites/{id}")
}

/// Customers for the "customer" drop-downs. The store caps a page at 200; a host with more
/// customers opens "New site" from the customer's own page, which preselects it.
pub(crate) async fn customer_choices(
    state: &WebState,
    ctx: &PageCtx,
) -> Result<Vec<customers::Model>, berth_core::Error> {
    Ok(store::customers::list(&state.db, &ctx.caller, Default::default(), Page { cursor: None, limit: Some(200) })
        .await?
        .items)
}

pub(crate) fn customer_options(customers: &[customers::Model], any: Option<&str>) -> Vec<(String, String)> {
    any.map(|label| (String::new(), label.to_owned()))
        .into_iter()
        .chain(customers.iter().map(|c| (c.id.to_string(), format!("{} ({})", c.company_name, c.email))))
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    customer: Option<String>,
    after: Option<String>,
}

async fn list(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<ListQuery>) -> PageResult {
    let status =
        q.status.as_deref().filter(|s| !s.is_empty()).and_then(|s| SiteStatus::try_from_value(&s.to_owned()).ok());
    let customer_id: Option<Uuid> = q.customer.as_deref().and_then(|c| c.parse().ok());
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let filter = store::sites::Filter { customer_id, status, q: q.q.clone() };
    let paged = store::sites::list(&state.db, &ctx.caller, filter, Page { cursor: after, limit: Some(25) }).await?;
    let customers = customer_choices(&state, &ctx).await?;
    let mut names: HashMap<Uuid, String> = customers.iter().map(|c| (c.id, c.company_name.clone())).collect();
    // Sites of customers beyond the drop-down's first 200 still get their customer's name.
    for s in &paged.items {
        if !names.contains_key(&s.model.customer_id) {
            let c = store::customers::get(&state.db, &ctx.caller, s.model.customer_id).await?;
            names.insert(c.id, c.company_name);
        }
    }
    let link = Link::new("/admin/sites")
        .param("q", q.q.clone())
        .param("status", status.map(|s| s.to_value()))
        .param("customer", customer_id);
    let filtered = q.q.as_deref().is_some_and(|s| !s.trim().is_empty()) || status.is_some() || customer_id.is_some();
    let rows: Vec<AnyView> = paged
        .items
        .iter()
        .map(|s| {
            let customer = names.get(&s.model.customer_id).cloned().unwrap_or_default();
            view! {
                <tr>
                    <td><a href=detail_href(s.model.id)>{s.model.name.clone()}</a></td>
                    <td><a href=format!("/admin/customers/{}", s.model.customer_id)>{customer}</a></td>
                    <td>{s.domains.join(", ")}</td>
                    <td>{badge::site_status(s.model.status)}</td>
                    <td>{when(&s.model.created_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let results = if rows.is_empty() {
        let message = if filtered { "No site matches these filters." } else { "No sites yet." };
        empty_state(message, Some(("New site", "/admin/sites/new".into()))).into_any()
    } else {
        let columns = [
            Column::plain("Name"),
            Column::plain("Customer"),
            Column::plain("Domains"),
            Column::plain("Status"),
            Column::plain("Created"),
        ];
        view! {
            <p class="muted">"Newest first."</p>
            {table("Sites", &columns, None, rows)}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let body = view! {
        <div class="toolbar">
            <form method="get" action="/admin/sites" class="filters" role="search">
                {Field::new("q", "Search site names").kind("search").value(q.q.clone().unwrap_or_default()).render()}
                {Field::new("status", "Status").select(status_options::<SiteStatus>()).value(status.map(|s| s.to_value()).unwrap_or_default()).render()}
                {Field::new("customer", "Customer").select(customer_options(&customers, Some("Any customer"))).value(customer_id.map(|c| c.to_string()).unwrap_or_default()).render()}
                <button type="submit" class="button button--secondary">"Filter"</button>
            </form>
            <a class="button" href="/admin/sites/new">"New site"</a>
        </div>
        {results}
    };
    Ok(page(ctx.chrome(), "Sites", body).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SiteForm {
    customer_id: String,
    name: String,
    image: String,
    domains: String,
    env: String,
}

fn domain_errors(errors: &FieldErrors) -> Option<String> {
    errors.get_nested("domains", |part| {
        let index: usize = part.trim_matches(['[', ']']).parse().unwrap_or(0);
        format!("domain {}", index + 1)
    })
}

fn env_errors(errors: &FieldErrors) -> Option<String> {
    errors.get_nested("env", |part| part.trim_start_matches('.').to_owned())
}

fn create_form(ctx: &PageCtx, customers: &[customers::Model], form: SiteForm, errors: FieldErrors) -> impl IntoView {
    view! {
        {error_summary(&errors)}
        <form method="post" action="/admin/sites/new" class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {Field::new("customer_id", "Customer").select(customer_options(customers, Some("Choose a customer"))).value(form.customer_id).required().error(errors.get("customer_id")).render()}
            {Field::new("name", "Name").value(form.name).required().autocomplete("off").hint("Lowercase letters, digits and dashes; unique per customer.").error(errors.get("name")).render()}
            {Field::new("image", "Image").value(form.image).hint(format!("Leave empty for {}.", store::sites::DEFAULT_IMAGE)).error(errors.get("image")).render()}
            {Field::new("domains", "Domains").textarea(3).value(form.domains).hint("One per line.").error(domain_errors(&errors)).render()}
            {Field::new("env", "Environment").textarea(4).value(form.env).hint("KEY=value, one per line. Values are stored encrypted.").error(env_errors(&errors)).render()}
            <div class="actions">
                <button type="submit" class="button">"Create site"</button>
                <a class="button button--quiet" href="/admin/sites">"Cancel"</a>
            </div>
        </form>
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewQuery {
    customer: Option<String>,
}

async fn new_form(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<NewQuery>) -> PageResult {
    let customers = customer_choices(&state, &ctx).await?;
    let form = SiteForm { customer_id: q.customer.unwrap_or_default(), ..Default::default() };
    let body = create_form(&ctx, &customers, form, FieldErrors::none());
    Ok(page(ctx.chrome(), "New site", body).into_response())
}

async fn create(State(state): State<WebState>, PostForm { ctx, form }: PostForm<SiteForm>) -> PageResult {
    let result = match parse_env(&form.env) {
        Err(e) => Err(berth_core::Error::Validation(vec![e]).into()),
        Ok(env) => {
            let new = store::sites::NewSite {
                customer_id: form.customer_id.parse().ok(),
                name: form.name.trim().to_owned(),
                image: Some(form.image.trim().to_owned()).filter(|i| !i.is_empty()),
                domains: parse_domains(&form.domains),
                env,
            };
            // The same operation as the API's: the reconciler starts the container at once.
            state.ops.create_site(&ctx.caller, new).await
        }
    };
    let errors = match result {
        Ok(site) => {
            let flash = Flash::success(format!("Site {} created.", site.model.name));
            return ctx.redirect(&detail_href(site.model.id), flash).await;
        }
        Err(Store(berth_core::Error::Validation(fields))) => FieldErrors::from_fields(fields),
        Err(Store(berth_core::Error::Conflict(message))) => FieldErrors::general(message),
        Err(Store(berth_core::Error::NotFound(_))) => {
            FieldErrors::from_fields(vec![FieldError::new("customer_id", "choose an existing customer")])
        }
        Err(e) => return Err(page_error(e)),
    };
    let customers = customer_choices(&state, &ctx).await?;
    let body = create_form(&ctx, &customers, form, errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), "New site", body)).into_response())
}

async fn detail(
    State(state): State<WebState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(usage_query): Query<crate::site_usage::UsageQuery>,
) -> PageResult {
    let id = parse_id(&id)?;
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let customer = store::customers::get(&state.db, &ctx.caller, site.model.customer_id).await?;
    let href = detail_href(id);
    let operations = crate::site_ops::operations(&state, &ctx, &site).await?;
    let usage = crate::site_usage::usage(&state, &ctx, &site, &usage_query).await?;
    let backups = crate::site_backups::section(&state, &ctx, &site).await?;
    let refresh = backups.refresh();
    let body = view! {
        <div class="toolbar">
            <a class="button" href=format!("{href}/edit")>"Edit site"</a>
            <a class="button button--quiet" href=format!("{href}/backup-policy")>"Backup settings"</a>
            <a class="button button--danger-quiet" href=format!("{href}/delete")>"Delete site"</a>
        </div>
        <section class="panel" aria-labelledby="s-settings">
            <h2 id="s-settings">"Settings"</h2>
            {site_facts(&site, Some((customer.company_name.clone(), format!("/admin/customers/{}", customer.id))))}
        </section>
        {usage}
        {backups.view}
        {operations}
    };
    // While a backup or restore runs the page reloads itself, so its progress shows.
    Ok(page_refreshing(ctx.chrome(), &format!("Site {}", site.model.name), body, refresh).into_response())
}

/// The edit form never shows stored environment values: each existing variable gets an empty
/// password field ("keep") and a remove box; new variables go in the text area.
#[derive(Deserialize, Default)]
#[serde(default)]
struct EditForm {
    image: String,
    domains: String,
    /// New or replaced variables, `KEY=value` per line.
    env_add: String,
    /// Keys to drop.
    #[serde(default)]
    remove: Vec<String>,
    /// The "allow root" box: sent only when ticked.
    allow_root: bool,
}

fn edit_body(
    ctx: &PageCtx,
    site: &Site,
    image: String,
    domains: String,
    env_add: String,
    allow_root: bool,
    errors: FieldErrors,
) -> impl IntoView {
    let href = detail_href(site.model.id);
    let action = format!("{href}/edit");
    let existing = site
        .env
        .keys()
        .map(|k| {
            let id = format!("remove-{k}");
            view! {
                <li>
                    <input type="checkbox" id=id.clone() name="remove" value=k.clone() />
                    <label for=id>"Remove " <code>{k.clone()}</code></label>
                </li>
            }
        })
        .collect_view();
    view! {
        {error_summary(&errors)}
        <form method="post" action=action class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {Field::new("image", "Image").value(image).required().error(errors.get("image")).render()}
            {Field::new("domains", "Domains").textarea(3).value(domains).hint("One per line.").error(domain_errors(&errors)).render()}
            <fieldset>
                <legend>"Environment"</legend>
                <p class="hint">"Stored values are never shown. Variables you do not touch keep their value."</p>
                {(!site.env.is_empty()).then(|| view! { <ul class="plain checks">{existing}</ul> })}
                {Field::new("env_add", "Add or replace variables").textarea(3).value(env_add).hint("KEY=value, one per line.").error(env_errors(&errors)).render()}
            </fieldset>
            <fieldset>
                <legend>"User"</legend>
                <p class="hint">"Sites run as a non-root user (the image's own, or 65534). Allow root only for an image that cannot work otherwise: its processes then run as root inside the container, still with every capability dropped."</p>
                <input type="checkbox" id="allow_root" name="allow_root" value="true" checked=allow_root />
                <label for="allow_root">"Allow this site to run as root when its image says so"</label>
            </fieldset>
            <div class="actions">
                <button type="submit" class="button">"Save changes"</button>
                <a class="button button--quiet" href=href>"Cancel"</a>
            </div>
        </form>
    }
}

async fn edit_form(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let body = edit_body(
        &ctx,
        &site,
        site.model.image.clone(),
        site.domains.join("\n"),
        String::new(),
        site.model.allow_root,
        FieldErrors::none(),
    );
    Ok(page(ctx.chrome(), &format!("Edit site {}", site.model.name), body).into_response())
}

/// Reads the edit form as a `Vec` of pairs: `remove` repeats once per ticked box, which a
/// struct field cannot collect from a urlencoded body.
async fn update(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<Vec<(String, String)>>,
) -> PageResult {
    let id = parse_id(&id)?;
    let mut edit = EditForm::default();
    for (k, v) in form {
        match k.as_str() {
            "image" => edit.image = v,
            "domains" => edit.domains = v,
            "env_add" => edit.env_add = v,
            "remove" => edit.remove.push(v),
            "allow_root" => edit.allow_root = v == "true",
            _ => {}
        }
    }
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let result = match parse_env(&edit.env_add) {
        Err(e) => Err(berth_core::Error::Validation(vec![FieldError::new("env", e.message)]).into()),
        Ok(added) => {
            let mut env: BTreeMap<String, String> = site.env.clone();
            env.retain(|k, _| !edit.remove.contains(k));
            env.extend(added);
            let patch = store::sites::Patch {
                image: Some(edit.image.trim().to_owned()),
                domains: Some(parse_domains(&edit.domains)),
                env: Some(env),
                desired_state: None,
                // The console's site pages are for admins; the store checks it again.
                allow_root: Some(edit.allow_root),
            };
            state.ops.update_site(&ctx.caller, id, patch).await
        }
    };
    let errors = match result {
        Ok(s) => return ctx.redirect(&detail_href(id), Flash::success(format!("Site {} saved.", s.model.name))).await,
        Err(Store(berth_core::Error::Validation(fields))) => FieldErrors::from_fields(fields),
        Err(Store(berth_core::Error::Conflict(message))) => FieldErrors::general(message),
        Err(e) => return Err(page_error(e)),
    };
    let body = edit_body(&ctx, &site, edit.image, edit.domains, edit.env_add, edit.allow_root, errors);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx.chrome(), &format!("Edit site {}", site.model.name), body))
        .into_response())
}

async fn confirm_delete(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let site = store::sites::get(&state.db, &state.keys, &ctx.caller, id).await?;
    let body = confirm_body(Confirm {
        question: format!("Delete the site {}?", site.model.name),
        detail: Some(
            "Its container, settings, domains and environment are removed. This cannot be undone. \
             The site's data volume is kept (the API's `purge` removes it too)."
                .into(),
        ),
        action: format!("{}/delete", detail_href(id)),
        button: "Delete site",
        cancel_href: detail_href(id),
        csrf: ctx.csrf.clone(),
    });
    Ok(page(ctx.chrome(), "Delete site", body).into_response())
}

async fn delete(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<crate::auth::NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    // The UI keeps the data volume; purging it is a deliberate API call.
    state.ops.delete_site(&ctx.caller, id, false).await.map_err(page_error)?;
    ctx.redirect("/admin/sites", Flash::success("Site deleted.")).await
}
