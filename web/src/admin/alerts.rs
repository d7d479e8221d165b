//! Monitoring in the console: the alerts (firing, pending, recently resolved), the incidents
//! list, the rules editor (global rules edited, plan and site overrides added and removed) and
//! silences. Incident detail and channels are shared with the portal (`crate::monitoring`).
//! Everything goes through `store::alerts` and `store::silences`, as the API does.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::entities::{alert_rules, alert_silences};
use berth_core::store::{self, page::Page};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::{customer_names, parse_id};
use crate::auth::{NoFields, PageCtx};
use crate::components::badge::{badge, Tone};
use crate::components::confirm::{confirm_body, Confirm};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::table::{pager, table, Column, Link};
use crate::components::when;
use crate::error::PageResult;
use crate::forms::PostForm;
use crate::layout::{page, page_refreshing, Area};
use crate::monitoring::{alerts_table, incidents_table, metric_label};
use crate::WebState;

/// The alerts pages reload themselves this often.
const REFRESH_SECONDS: u32 = 30;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/alerts", get(alerts_page))
        .route("/admin/incidents", get(incidents_page))
        .route("/admin/alerts/rules", get(rules_page).post(create_rule))
        .route("/admin/alerts/rules/{id}", get(edit_rule_page).post(update_rule))
        .route("/admin/alerts/rules/{id}/delete", get(confirm_delete_rule).post(delete_rule))
        .route("/admin/alerts/silences", get(silences_page).post(create_silence))
        .route("/admin/alerts/silences/{id}/expire", post(expire_silence))
}

/// The links between the alerting pages.
pub(crate) fn subnav(current: &'static str) -> impl IntoView {
    let items = [
        ("/admin/alerts", "Alerts"),
        ("/admin/incidents", "Incidents"),
        ("/admin/alerts/rules", "Rules"),
        ("/admin/alerts/channels", "Channels"),
        ("/admin/alerts/silences", "Silences"),
    ]
    .into_iter()
    .map(|(href, label)| {
        let here = (href == current).then_some("true");
        view! { <a class="button button--quiet button--small" href=href aria-current=here>{label}</a> }
    })
    .collect_view();
    view! { <nav class="actions subnav" aria-label="Alerting">{items}</nav> }
}

// ----- alerts -----

async fn alerts_page(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    let mut sections = Vec::new();
    for (st, heading, limit, empty) in [
        ("firing", "Firing", 100, "Nothing is firing."),
        ("pending", "Pending", 100, "Nothing is pending."),
        ("resolved", "Recently resolved", 10, "Nothing resolved yet."),
    ] {
        // Firing and pending from the 30-second cache (`store::alert_states`), resolved from
        // the database.
        let items = store::alert_states::list(
            &state.db,
            &state.cache,
            &ctx.caller,
            Some(st),
            Page { cursor: None, limit: Some(limit) },
        )
        .await?
        .items;
        sections.push((st, heading, items, empty));
    }
    let all = sections.iter().flat_map(|(_, _, items, _)| items.iter());
    let sites = store::alerts::site_names(&state.db, &ctx.caller, all.clone().map(|a| a.site_id)).await?;
    let customers = customer_names(
        &state,
        &ctx,
        &[],
        all.map(|a| a.customer_id).collect::<std::collections::BTreeSet<_>>().into_iter(),
    )
    .await?;
    let body = sections
        .into_iter()
        .map(|(st, heading, items, empty)| {
            let content = if items.is_empty() {
                empty_state(empty, None).into_any()
            } else {
                alerts_table(Area::Admin, heading, &items, &sites, &customers).into_any()
            };
            view! {
                <section aria-labelledby=format!("a-{st}") id=format!("alerts-{st}")>
                    <h2 id=format!("a-{st}")>{heading} " " <span class="total">{items.len()}</span></h2>
                    {content}
                </section>
            }
        })
        .collect_view();
    let body = view! {
        {subnav("/admin/alerts")}
        <p class="muted">{format!("One alert per site and metric. This page reloads every {REFRESH_SECONDS} s.")}</p>
        {body}
    };
    Ok(page_refreshing(ctx.chrome(), "Alerts", body, Some(REFRESH_SECONDS)).into_response())
}

// ----- incidents -----

#[derive(Deserialize, Default)]
#[serde(default)]
struct IncidentsQuery {
    status: Option<String>,
    after: Option<String>,
}

async fn incidents_page(State(state): State<WebState>, ctx: PageCtx, Query(q): Query<IncidentsQuery>) -> PageResult {
    let status = q.status.as_deref().filter(|s| ["open", "acknowledged", "resolved"].contains(s)).map(str::to_owned);
    let after = q.after.as_deref().and_then(|a| a.parse().ok());
    let paged = store::alerts::list_incidents(
        &state.db,
        &ctx.caller,
        status.as_deref(),
        Page { cursor: after, limit: Some(25) },
    )
    .await?;
    let sites = store::alerts::site_names(&state.db, &ctx.caller, paged.items.iter().map(|i| i.site_id)).await?;
    let customers = customer_names(
        &state,
        &ctx,
        &[],
        paged.items.iter().map(|i| i.customer_id).collect::<std::collections::BTreeSet<_>>().into_iter(),
    )
    .await?;
    let link = Link::new("/admin/incidents").param("status", status.clone());
    let results = if paged.items.is_empty() {
        let message = if status.is_some() { "No incident in this status." } else { "No incidents yet." };
        empty_state(message, None).into_any()
    } else {
        view! {
            <p class="muted">"Newest first. Open one to read its timeline."</p>
            {incidents_table(Area::Admin, &paged.items, &sites, &customers)}
            {pager(&link, paged.next_cursor, after.is_none())}
        }
        .into_any()
    };
    let options = vec![
        (String::new(), "Any status".to_owned()),
        ("open".to_owned(), "open".to_owned()),
        ("acknowledged".to_owned(), "acknowledged".to_owned()),
        ("resolved".to_owned(), "resolved".to_owned()),
    ];
    let body = view! {
        {subnav("/admin/incidents")}
        <div class="toolbar">
            <form method="get" action="/admin/incidents" class="filters" role="search">
                {Field::new("status", "Status").select(options).value(status.unwrap_or_default()).render()}
                <button type="submit" class="button button--secondary">"Filter"</button>
            </form>
        </div>
        {results}
    };
    Ok(page_refreshing(ctx.chrome(), "Incidents", body, Some(REFRESH_SECONDS)).into_response())
}

// ----- rules -----

fn scope_text(rule: &alert_rules::Model, sites: &HashMap<Uuid, (String, Uuid)>) -> AnyView {
    match (rule.scope.as_str(), &rule.plan_id, rule.site_id) {
        ("plan", Some(p), _) => view! { <span>"plan " <code>{p.clone()}</code></span> }.into_any(),
        ("site", _, Some(s)) => {
            let name = sites.get(&s).map_or_else(|| s.to_string(), |(n, _)| n.clone());
            view! { <span>"site " <a href=format!("/admin/sites/{s}")>{name}</a></span> }.into_any()
        }
        _ => view! { <span>"global"</span> }.into_any(),
    }
}

/// A metric inside a sentence: "the CPU rule", "the memory rule".
fn metric_noun(metric: &str) -> String {
    match metric {
        "cpu" => "CPU".into(),
        other => other.to_owned(),
    }
}

/// The unit of a rule's thresholds.
fn unit(metric: &str) -> &'static str {
    match metric {
        "down" => "s",
        "restarts" => "restarts",
        "certificate" => "days left",
        "backup" => "failed in a row",
        "backup_check" => "(failed)",
        _ => "%",
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn rules_table(rules: &[alert_rules::Model], sites: &HashMap<Uuid, (String, Uuid)>) -> impl IntoView {
    let rows: Vec<AnyView> = rules
        .iter()
        .map(|r| {
            let state = if r.enabled {
                badge("enabled".into(), Tone::Good).into_any()
            } else {
                badge("off".into(), Tone::Neutral).into_any()
            };
            let delete = (r.scope != "global").then(|| {
                view! { <a class="button button--danger-quiet button--small" href=format!("/admin/alerts/rules/{}/delete", r.id)>"Delete"</a> }
            });
            let u = unit(&r.metric);
            view! {
                <tr>
                    <td>{metric_label(&r.metric)}</td>
                    <td>{scope_text(r, sites)}</td>
                    <td class="nowrap">{format!("{} {u}", number(r.warning))}</td>
                    <td class="nowrap">{format!("{} {u}", number(r.critical))}</td>
                    <td class="nowrap">{format!("{} s", r.for_seconds)}</td>
                    <td>{state}</td>
                    <td class="nowrap">
                        <a class="button button--secondary button--small" href=format!("/admin/alerts/rules/{}", r.id)>"Edit"</a>
                        " " {delete}
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let columns = [
        Column::plain("Metric"),
        Column::plain("Scope"),
        Column::plain("Warning at"),
        Column::plain("Critical at"),
        Column::plain("For"),
        Column::plain("State"),
        Column::plain("Actions"),
    ];
    table("Alert rules", &columns, None, rows)
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct RuleForm {
    metric: String,
    scope: String,
    plan: String,
    site: String,
    warning: String,
    critical: String,
    for_seconds: String,
    /// "true" when ticked; absent otherwise.
    enabled: Option<String>,
}

impl RuleForm {
    fn of(rule: &alert_rules::Model) -> Self {
        Self {
            metric: rule.metric.clone(),
            scope: rule.scope.clone(),
            plan: rule.plan_id.clone().unwrap_or_default(),
            site: rule.site_id.map(|s| s.to_string()).unwrap_or_default(),
            warning: number(rule.warning),
            critical: number(rule.critical),
            for_seconds: rule.for_seconds.to_string(),
            enabled: rule.enabled.then(|| "true".to_owned()),
        }
    }

    /// The numbers, each parsed or a readable field error (what was typed stays in the form).
    fn numbers(&self, errors: &mut Vec<berth_core::FieldError>) -> (Option<f64>, Option<f64>, Option<i32>) {
        let mut num = |field: &str, text: &str| -> Option<f64> {
            match text.trim().replace(',', ".").parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    errors.push(berth_core::FieldError::new(field, "must be a number, e.g. 80 or 92.5"));
                    None
                }
            }
        };
        let warning = num("warning", &self.warning);
        let critical = num("critical", &self.critical);
        let for_seconds = match self.for_seconds.trim().parse::<i32>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.push(berth_core::FieldError::new("for_seconds", "must be a whole number of seconds, e.g. 300"));
                None
            }
        };
        (warning, critical, for_seconds)
    }
}

fn threshold_fields(form: &RuleForm, errors: &FieldErrors) -> impl IntoView {
    let hint = "CPU: % of one core; memory: % of the container's limit; down: seconds without a passing check.";
    view! {
        {Field::new("warning", "Warning at").value(form.warning.clone()).required().hint(hint).error(errors.get("warning")).render()}
        {Field::new("critical", "Critical at").value(form.critical.clone()).required().hint("At least the warning threshold.").error(errors.get("critical")).render()}
        {Field::new("for_seconds", "For (seconds)").value(form.for_seconds.clone()).numeric().required().hint("How long a breach must last before the alert fires; 0 to 86400.").error(errors.get("for_seconds")).render()}
        <div class="field">
            <label><input type="checkbox" name="enabled" value="true" checked={form.enabled.as_deref() == Some("true")} />" Enabled"</label>
        </div>
    }
}

async fn rules_page_with(state: &WebState, ctx: &PageCtx, form: RuleForm, errors: FieldErrors) -> PageResult {
    let rules = store::alerts::rules(&state.db, &ctx.caller).await?;
    let plans = store::plans::list(&state.db).await?;
    let sites = store::sites::list(&state.db, &ctx.caller, Default::default(), Page { cursor: None, limit: Some(200) })
        .await?
        .items;
    let names: HashMap<Uuid, (String, Uuid)> =
        sites.iter().map(|s| (s.model.id, (s.model.name.clone(), s.model.customer_id))).collect();
    let mut names = names;
    let missing: Vec<Uuid> = rules.iter().filter_map(|r| r.site_id).filter(|s| !names.contains_key(s)).collect();
    names.extend(store::alerts::site_names(&state.db, &ctx.caller, missing).await?);
    let metrics: Vec<(String, String)> =
        berth_core::alerting::METRICS.iter().map(|m| ((*m).to_owned(), metric_label(m))).collect();
    let scopes = vec![("plan".to_owned(), "A plan".to_owned()), ("site".to_owned(), "One site".to_owned())];
    let mut plan_options = vec![(String::new(), "—".to_owned())];
    plan_options.extend(plans.iter().map(|p| (p.id.clone(), p.name.clone())));
    let mut site_options = vec![(String::new(), "—".to_owned())];
    site_options.extend(sites.iter().map(|s| (s.model.id.to_string(), s.model.name.clone())));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let form = if form.metric.is_empty() {
        RuleForm { metric: "cpu".into(), scope: "plan".into(), enabled: Some("true".into()), ..form }
    } else {
        form
    };
    let body = view! {
        {subnav("/admin/alerts/rules")}
        <p class="muted">"For each site and metric the most specific enabled rule applies: the site's own, else its plan's, else the global one."</p>
        {rules_table(&rules, &names)}
        <h2 id="r-new">"Add a plan or site rule"</h2>
        {error_summary(&errors)}
        <form method="post" action="/admin/alerts/rules" class="panel stack" novalidate aria-labelledby="r-new">
            {csrf_input(&ctx.csrf)}
            {Field::new("metric", "Metric").select(metrics).value(form.metric.clone()).error(errors.get("metric")).render()}
            {Field::new("scope", "Applies to").select(scopes).value(form.scope.clone()).error(errors.get("scope")).render()}
            {Field::new("plan", "Plan").select(plan_options).value(form.plan.clone()).hint("With “A plan”.").error(errors.get("plan_id")).render()}
            {Field::new("site", "Site").select(site_options).value(form.site.clone()).hint("With “One site”.").error(errors.get("site_id")).render()}
            {threshold_fields(&form, &errors)}
            <div class="actions"><button type="submit" class="button">"Add rule"</button></div>
        </form>
    };
    Ok((status, page(ctx.chrome(), "Alert rules", body)).into_response())
}

async fn rules_page(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    rules_page_with(&state, &ctx, RuleForm::default(), FieldErrors::none()).await
}

async fn create_rule(State(state): State<WebState>, PostForm { ctx, form }: PostForm<RuleForm>) -> PageResult {
    let mut fields = Vec::new();
    let (warning, critical, for_seconds) = form.numbers(&mut fields);
    let site_id = match form.site.trim() {
        "" => None,
        s => s.parse::<Uuid>().ok(),
    };
    let errors = match (warning, critical, for_seconds) {
        (Some(warning), Some(critical), Some(for_seconds)) if fields.is_empty() => {
            let new = store::alerts::NewRule {
                metric: form.metric.clone(),
                scope: form.scope.clone(),
                plan_id: (form.scope == "plan").then(|| form.plan.clone()),
                site_id: site_id.filter(|_| form.scope == "site"),
                warning,
                critical,
                for_seconds,
                enabled: form.enabled.as_deref() == Some("true"),
            };
            match store::alerts::create_rule(&state.db, &ctx.caller, new).await {
                Ok(rule) => {
                    let flash =
                        Flash::success(format!("{} rule added for the {}.", metric_label(&rule.metric), rule.scope));
                    return ctx.redirect("/admin/alerts/rules", flash).await;
                }
                Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
                Err(berth_core::Error::Conflict(message)) => FieldErrors::general(message),
                Err(e) => return Err(e.into()),
            }
        }
        _ => FieldErrors::from_fields(fields),
    };
    rules_page_with(&state, &ctx, form, errors).await
}

async fn edit_rule_page_with(
    state: &WebState,
    ctx: &PageCtx,
    id: Uuid,
    form: Option<RuleForm>,
    errors: FieldErrors,
) -> PageResult {
    let rules = store::alerts::rules(&state.db, &ctx.caller).await?;
    let rule = rules.into_iter().find(|r| r.id == id).ok_or(crate::error::PageError::NotFound)?;
    let sites = store::alerts::site_names(&state.db, &ctx.caller, rule.site_id).await?;
    let form = form.unwrap_or_else(|| RuleForm::of(&rule));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = view! {
        {subnav("/admin/alerts/rules")}
        <p><a href="/admin/alerts/rules">"← All rules"</a></p>
        <dl class="facts panel">
            <dt>"Metric"</dt><dd>{metric_label(&rule.metric)}</dd>
            <dt>"Scope"</dt><dd>{scope_text(&rule, &sites)}</dd>
            <dt>"Last changed"</dt><dd>{when(&rule.updated_at)}</dd>
        </dl>
        {error_summary(&errors)}
        <form method="post" action=format!("/admin/alerts/rules/{id}") class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {threshold_fields(&form, &errors)}
            <div class="actions">
                <button type="submit" class="button">"Save rule"</button>
                <a class="button button--quiet" href="/admin/alerts/rules">"Cancel"</a>
            </div>
        </form>
    };
    let title = format!("Edit the {} rule", metric_noun(&rule.metric));
    Ok((status, page(ctx.chrome(), &title, body)).into_response())
}

async fn edit_rule_page(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    edit_rule_page_with(&state, &ctx, id, None, FieldErrors::none()).await
}

async fn update_rule(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, form }: PostForm<RuleForm>,
) -> PageResult {
    let id = parse_id(&id)?;
    let mut fields = Vec::new();
    let (warning, critical, for_seconds) = form.numbers(&mut fields);
    let errors = if fields.is_empty() {
        let patch = store::alerts::RulePatch {
            warning,
            critical,
            for_seconds,
            enabled: Some(form.enabled.as_deref() == Some("true")),
        };
        match store::alerts::update_rule(&state.db, &ctx.caller, id, patch).await {
            Ok(rule) => {
                let flash = Flash::success(format!("{} rule saved.", metric_label(&rule.metric)));
                return ctx.redirect("/admin/alerts/rules", flash).await;
            }
            Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
            Err(e) => return Err(e.into()),
        }
    } else {
        FieldErrors::from_fields(fields)
    };
    edit_rule_page_with(&state, &ctx, id, Some(form), errors).await
}

async fn confirm_delete_rule(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let rules = store::alerts::rules(&state.db, &ctx.caller).await?;
    let rule = rules.into_iter().find(|r| r.id == id).ok_or(crate::error::PageError::NotFound)?;
    let body = confirm_body(Confirm {
        question: format!("Delete this {} rule of the {}?", metric_noun(&rule.metric), rule.scope),
        detail: Some("The plan's or the global rule applies again.".into()),
        action: format!("/admin/alerts/rules/{id}/delete"),
        button: "Delete rule",
        cancel_href: "/admin/alerts/rules".into(),
        csrf: ctx.csrf.clone(),
    });
    Ok(page(ctx.chrome(), "Delete rule", body).into_response())
}

async fn delete_rule(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let flash = match store::alerts::delete_rule(&state.db, &ctx.caller, id).await {
        Ok(()) => Flash::success("Rule deleted."),
        Err(berth_core::Error::Conflict(message)) => Flash::error(format!("Not deleted: {message}.")),
        Err(e) => return Err(e.into()),
    };
    ctx.redirect("/admin/alerts/rules", flash).await
}

// ----- silences -----

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct SilenceForm {
    scope: String,
    customer: String,
    site: String,
    metric: String,
    /// A preset: `1h`, `4h`, `24h`; empty to use `ends_at`.
    duration: String,
    /// UTC, `YYYY-MM-DDTHH:MM` (a `datetime-local` input) or RFC 3339.
    ends_at: String,
    reason: String,
}

/// The end of a silence from the form: a preset from now, or the time typed (UTC).
fn parse_end(form: &SilenceForm, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
    match form.duration.as_str() {
        "1h" => return Ok(Some(now + Duration::hours(1))),
        "4h" => return Ok(Some(now + Duration::hours(4))),
        "24h" => return Ok(Some(now + Duration::hours(24))),
        "" => {}
        _ => return Err("choose 1 hour, 4 hours, 24 hours or a time".into()),
    }
    let text = form.ends_at.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(naive.and_utc()));
        }
    }
    Err("must be a date and time in UTC, e.g. 2026-12-24T18:00".into())
}

fn silence_scope(
    s: &alert_silences::Model,
    customers: &HashMap<Uuid, String>,
    sites: &HashMap<Uuid, (String, Uuid)>,
) -> AnyView {
    match (s.scope.as_str(), s.customer_id, s.site_id) {
        ("customer", Some(c), _) => {
            let name = customers.get(&c).cloned().unwrap_or_else(|| c.to_string());
            view! { <span>"customer " <a href=format!("/admin/customers/{c}")>{name}</a></span> }.into_any()
        }
        ("site", _, Some(site)) => {
            let name = sites.get(&site).map_or_else(|| site.to_string(), |(n, _)| n.clone());
            view! { <span>"site " <a href=format!("/admin/sites/{site}")>{name}</a></span> }.into_any()
        }
        _ => view! { <span>"every site"</span> }.into_any(),
    }
}

async fn silences_page_with(state: &WebState, ctx: &PageCtx, form: SilenceForm, errors: FieldErrors) -> PageResult {
    let silences = store::silences::list(&state.db, &ctx.caller, true).await?;
    let now = Utc::now();
    // In force or yet to start first; then the 20 that ended last.
    let (current, ended): (Vec<_>, Vec<_>) = silences.into_iter().partition(|s| s.ends_at > now);
    let ended: Vec<_> = ended.into_iter().take(20).collect();
    let customers = super::sites::customer_choices(state, ctx).await?;
    let sites = store::sites::list(&state.db, &ctx.caller, Default::default(), Page { cursor: None, limit: Some(200) })
        .await?
        .items;
    let customer_map = customer_names(
        state,
        ctx,
        &customers,
        current
            .iter()
            .chain(&ended)
            .filter_map(|s| s.customer_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter(),
    )
    .await?;
    let site_map =
        store::alerts::site_names(&state.db, &ctx.caller, current.iter().chain(&ended).filter_map(|s| s.site_id))
            .await?;
    let rows = |items: &[alert_silences::Model], expire: bool| -> Vec<AnyView> {
        items
            .iter()
            .map(|s| {
                let state = if s.starts_at > now {
                    badge("scheduled".into(), Tone::Busy).into_any()
                } else if s.ends_at > now {
                    badge("active".into(), Tone::Warning).into_any()
                } else {
                    badge("ended".into(), Tone::Neutral).into_any()
                };
                let action = expire.then(|| {
                    view! {
                        <form method="post" action=format!("/admin/alerts/silences/{}/expire", s.id) class="inline">
                            {csrf_input(&ctx.csrf)}
                            <button type="submit" class="button button--secondary button--small">"Expire now"</button>
                        </form>
                    }
                });
                view! {
                    <tr>
                        <td>{silence_scope(s, &customer_map, &site_map)}</td>
                        <td>{s.metric.as_deref().map_or_else(|| "every metric".to_owned(), metric_label)}</td>
                        <td>{state}</td>
                        <td class="nowrap">{when(&s.starts_at)}</td>
                        <td class="nowrap">{when(&s.ends_at)}</td>
                        <td>{s.reason.clone()}<br /><span class="muted">{format!("by {}", s.created_by)}</span></td>
                        {expire.then(|| view! { <td>{action}</td> })}
                    </tr>
                }
                .into_any()
            })
            .collect()
    };
    let columns = |with_action: bool| {
        let mut columns = vec![
            Column::plain("Silences"),
            Column::plain("Metric"),
            Column::plain("State"),
            Column::plain("From"),
            Column::plain("Until"),
            Column::plain("Reason"),
        ];
        if with_action {
            columns.push(Column::plain("Action"));
        }
        columns
    };
    let current_view = if current.is_empty() {
        empty_state("No silence is in force: every incident notifies.", None).into_any()
    } else {
        table("Silences in force", &columns(true), None, rows(&current, true)).into_any()
    };
    let ended_view = (!ended.is_empty()).then(|| {
        view! {
            <h2>"Ended"</h2>
            {table("Ended silences", &columns(false), None, rows(&ended, false))}
        }
    });
    let scopes = vec![
        ("all".to_owned(), "Every site".to_owned()),
        ("customer".to_owned(), "One customer's sites".to_owned()),
        ("site".to_owned(), "One site".to_owned()),
    ];
    let mut metrics = vec![(String::new(), "Every metric".to_owned())];
    metrics.extend(berth_core::alerting::METRICS.iter().map(|m| ((*m).to_owned(), metric_label(m))));
    let durations = vec![
        (String::new(), "Until the time below".to_owned()),
        ("1h".to_owned(), "1 hour from now".to_owned()),
        ("4h".to_owned(), "4 hours from now".to_owned()),
        ("24h".to_owned(), "24 hours from now".to_owned()),
    ];
    let mut site_options = vec![(String::new(), "—".to_owned())];
    site_options.extend(sites.iter().map(|s| (s.model.id.to_string(), s.model.name.clone())));
    let form =
        if form.scope.is_empty() { SilenceForm { scope: "all".into(), duration: "1h".into(), ..form } } else { form };
    let end_error = errors.get("ends_at").or_else(|| errors.get("duration"));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = view! {
        {subnav("/admin/alerts/silences")}
        <p class="muted">"While a silence covers an alert, the alert still fires and resolves and its incident records everything, but nobody is notified: the timeline says “silenced” instead."</p>
        {current_view}
        <h2 id="s-new">"Silence notifications"</h2>
        {error_summary(&errors)}
        <form method="post" action="/admin/alerts/silences" class="panel stack" novalidate aria-labelledby="s-new">
            {csrf_input(&ctx.csrf)}
            {Field::new("scope", "Silence").select(scopes).value(form.scope.clone()).error(errors.get("scope")).render()}
            {Field::new("customer", "Customer").select(super::sites::customer_options(&customers, Some("—"))).value(form.customer.clone()).hint("With “One customer's sites”.").error(errors.get("customer_id")).render()}
            {Field::new("site", "Site").select(site_options).value(form.site.clone()).hint("With “One site”.").error(errors.get("site_id")).render()}
            {Field::new("metric", "Metric").select(metrics).value(form.metric.clone()).error(errors.get("metric")).render()}
            {Field::new("duration", "For").select(durations).value(form.duration.clone()).render()}
            {Field::new("ends_at", "Or until (UTC)").kind("datetime-local").value(form.ends_at.clone()).hint("A silence always ends: pick a preset above or a time here.").error(end_error).render()}
            {Field::new("reason", "Reason").value(form.reason.clone()).autocomplete("off").hint("Shown in the timeline of the incidents it silences.").error(errors.get("reason")).render()}
            <div class="actions"><button type="submit" class="button">"Create silence"</button></div>
        </form>
        {ended_view}
    };
    Ok((status, page(ctx.chrome(), "Silences", body)).into_response())
}

async fn silences_page(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    silences_page_with(&state, &ctx, SilenceForm::default(), FieldErrors::none()).await
}

async fn create_silence(State(state): State<WebState>, PostForm { ctx, form }: PostForm<SilenceForm>) -> PageResult {
    let errors = match parse_end(&form, Utc::now()) {
        Err(message) => FieldErrors::from_fields(vec![berth_core::FieldError::new("ends_at", message)]),
        Ok(ends_at) => {
            let id = |text: &str| text.trim().parse::<Uuid>().ok();
            let new = store::silences::NewSilence {
                scope: form.scope.clone(),
                customer_id: id(&form.customer).filter(|_| form.scope == "customer"),
                site_id: id(&form.site).filter(|_| form.scope == "site"),
                metric: Some(form.metric.clone()),
                starts_at: None,
                ends_at,
                reason: form.reason.clone(),
            };
            match store::silences::create(&state.db, &ctx.caller, new).await {
                Ok(s) => {
                    store::alert_states::invalidate(&state.cache).await;
                    let flash = Flash::success(format!("Silenced until {}.", when(&s.ends_at)));
                    return ctx.redirect("/admin/alerts/silences", flash).await;
                }
                Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
                Err(e) => return Err(e.into()),
            }
        }
    };
    silences_page_with(&state, &ctx, form, errors).await
}

async fn expire_silence(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    store::silences::expire(&state.db, &ctx.caller, id).await?;
    store::alert_states::invalidate(&state.cache).await;
    ctx.redirect("/admin/alerts/silences", Flash::success("Silence expired: notifications resume.")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_ends_come_from_a_preset_or_a_utc_time() {
        let now = Utc::now();
        let form = |duration: &str, ends_at: &str| SilenceForm {
            duration: duration.into(),
            ends_at: ends_at.into(),
            ..Default::default()
        };
        assert_eq!(parse_end(&form("4h", ""), now), Ok(Some(now + Duration::hours(4))));
        assert_eq!(parse_end(&form("", ""), now), Ok(None));
        let at = parse_end(&form("", "2026-12-24T18:00"), now).expect("parses").expect("some");
        assert_eq!(at.to_rfc3339(), "2026-12-24T18:00:00+00:00");
        assert!(parse_end(&form("", "tomorrow"), now).is_err());
        assert!(parse_end(&form("7d", ""), now).is_err());
    }
}
