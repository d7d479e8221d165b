//! Monitoring pages both areas share: an incident with its timeline and the Acknowledge button,
//! and notification channels (list, add, delete after confirmation, send a test). The console
//! shows every channel and may add administrators' channels or allow private webhook addresses;
//! the portal shows the customer's own. Data comes from `store::alerts` with the caller, exactly
//! as for the API, so another customer's incident or channel is the not-found page.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use berth_core::entities::{alerts, incident_events, incidents, notification_channels};
use berth_core::store::{self, page::Page};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::admin::parse_id;
use crate::auth::{NoFields, PageCtx};
use crate::components::badge::{badge, Tone};
use crate::components::confirm::{confirm_body, Confirm};
use crate::components::empty::empty_state;
use crate::components::flash::Flash;
use crate::components::form::{csrf_input, error_summary, Field, FieldErrors};
use crate::components::table::{table, Column};
use crate::components::{when, when_opt};
use crate::error::PageResult;
use crate::forms::PostForm;
use crate::layout::{page, Area};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    let mut router = Router::new();
    for area in ["/admin", "/portal"] {
        router = router
            .route(&format!("{area}/incidents/{{id}}"), get(incident_page))
            .route(&format!("{area}/incidents/{{id}}/acknowledge"), post(acknowledge))
            .route(&format!("{area}/alerts/channels/{{id}}/delete"), get(confirm_delete_channel).post(delete_channel))
            .route(&format!("{area}/alerts/channels/{{id}}/test"), post(test_channel));
    }
    router
        .route("/admin/alerts/channels", get(admin_channels).post(create_channel))
        .route("/portal/alerts", get(portal_alerts))
        .route("/portal/alerts/channels", post(create_channel))
}

// ----- vocabulary -----

pub(crate) fn incident_status(status: &str) -> impl IntoView {
    let tone = match status {
        "open" => Tone::Bad,
        "acknowledged" => Tone::Warning,
        "resolved" => Tone::Good,
        _ => Tone::Neutral,
    };
    badge(status.to_owned(), tone)
}

pub(crate) fn alert_state(state: &str) -> impl IntoView {
    let tone = match state {
        "firing" => Tone::Bad,
        "pending" => Tone::Warning,
        "resolved" => Tone::Good,
        _ => Tone::Neutral,
    };
    badge(state.to_owned(), tone)
}

pub(crate) fn severity(severity: Option<&str>) -> impl IntoView {
    severity.map(|s| {
        let tone = if s == "critical" { Tone::Bad } else { Tone::Warning };
        badge(s.to_owned(), tone)
    })
}

/// What a metric is, in words.
pub(crate) fn metric_label(metric: &str) -> String {
    match metric {
        "cpu" => "CPU".into(),
        "memory" => "Memory".into(),
        "down" => "Down".into(),
        "restarts" => "Restarts".into(),
        "certificate" => "Certificate".into(),
        "disk" => "Disk".into(),
        "backup" => "Backup failures".into(),
        "backup_check" => "Backup check".into(),
        other => other.to_owned(),
    }
}

/// A value as the metric measures it: "85.2 % of a core", "91.0 % of the limit", "62 s".
pub(crate) fn metric_value(metric: &str, value: Option<f64>) -> String {
    match (metric, value) {
        (_, None) => "—".into(),
        ("cpu", Some(v)) => format!("{v:.1} % of a core"),
        ("memory", Some(v)) => format!("{v:.1} % of the limit"),
        ("down", Some(v)) => format!("{v:.0} s without a passing check"),
        ("restarts", Some(v)) => format!("{v:.0} restarts in 10 minutes"),
        ("certificate", Some(v)) => format!("{v:.1} days until the certificate expires"),
        ("disk", Some(v)) => format!("{v:.1} % of the plan's storage"),
        ("backup", Some(v)) => format!("{v:.0} failed in a row"),
        ("backup_check", Some(v)) => (if v > 0.0 { "failed" } else { "passed" }).into(),
        (_, Some(v)) => format!("{v:.1}"),
    }
}

fn site_href(area: Area, id: Uuid) -> String {
    area.path(&format!("/sites/{id}"))
}

pub(crate) fn incident_href(area: Area, id: Uuid) -> String {
    area.path(&format!("/incidents/{id}"))
}

/// A site's name as a link, or its id when the caller cannot see it any more.
fn site_link(area: Area, names: &HashMap<Uuid, (String, Uuid)>, id: Uuid) -> AnyView {
    match names.get(&id) {
        Some((name, _)) => view! { <a href=site_href(area, id)>{name.clone()}</a> }.into_any(),
        None => view! { <span class="muted">"deleted site"</span> }.into_any(),
    }
}

fn customer_link(names: &HashMap<Uuid, String>, id: Uuid) -> AnyView {
    let name = names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    view! { <a href=format!("/admin/customers/{id}")>{name}</a> }.into_any()
}

// ----- alerts and incidents tables -----

/// Alerts: site, (console: customer,) metric, severity, value, since, incident.
pub(crate) fn alerts_table(
    area: Area,
    caption: &str,
    items: &[alerts::Model],
    sites: &HashMap<Uuid, (String, Uuid)>,
    customers: &HashMap<Uuid, String>,
) -> impl IntoView {
    let admin = area == Area::Admin;
    let rows: Vec<AnyView> = items
        .iter()
        .map(|a| {
            let since = match a.state.as_str() {
                "firing" => a.fired_at,
                "pending" => a.pending_since,
                "resolved" => a.resolved_at,
                _ => None,
            }
            .unwrap_or(a.updated_at);
            let incident = a.incident_id.map(|i| view! { <a href=incident_href(area, i)>"incident"</a> });
            let row_class = if a.state == "firing" { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td>{site_link(area, sites, a.site_id)}</td>
                    {admin.then(|| view! { <td>{customer_link(customers, a.customer_id)}</td> })}
                    <td>{metric_label(&a.metric)}</td>
                    <td>{alert_state(&a.state)} " " {severity(a.severity.as_deref())}</td>
                    <td>{metric_value(&a.metric, a.value)}</td>
                    <td class="nowrap">{when(&since)}</td>
                    <td>{incident}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let mut columns = vec![Column::plain("Site")];
    if admin {
        columns.push(Column::plain("Customer"));
    }
    columns.extend([
        Column::plain("Metric"),
        Column::plain("State"),
        Column::plain("Value"),
        Column::plain("Since"),
        Column::plain("Incident"),
    ]);
    table(caption, &columns, None, rows)
}

/// Incidents: site, (console: customer,) metric, severity, status, opened, resolved.
pub(crate) fn incidents_table(
    area: Area,
    items: &[incidents::Model],
    sites: &HashMap<Uuid, (String, Uuid)>,
    customers: &HashMap<Uuid, String>,
) -> impl IntoView {
    let admin = area == Area::Admin;
    let rows: Vec<AnyView> = items
        .iter()
        .map(|i| {
            let row_class = if i.status == "open" { "row--failed" } else { "" };
            view! {
                <tr class=row_class>
                    <td><a href=incident_href(area, i.id)>{format!("{} · {}", metric_label(&i.metric), when(&i.opened_at))}</a></td>
                    <td>{site_link(area, sites, i.site_id)}</td>
                    {admin.then(|| view! { <td>{customer_link(customers, i.customer_id)}</td> })}
                    <td>{severity(Some(&i.severity))}</td>
                    <td>{incident_status(&i.status)}</td>
                    <td class="nowrap">{when_opt(&i.resolved_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let mut columns = vec![Column::plain("Incident"), Column::plain("Site")];
    if admin {
        columns.push(Column::plain("Customer"));
    }
    columns.extend([Column::plain("Severity"), Column::plain("Status"), Column::plain("Resolved")]);
    table("Incidents", &columns, None, rows)
}

// ----- one incident -----

fn event_class(kind: &str) -> &'static str {
    match kind {
        "fired" => "timeline-step timeline-step--failed",
        "resolved" => "timeline-step timeline-step--succeeded",
        "notified" | "acknowledged" | "remediated" => "timeline-step timeline-step--running",
        _ => "timeline-step timeline-step--pending",
    }
}

fn timeline(events: &[incident_events::Model]) -> impl IntoView {
    let items = events
        .iter()
        .map(|e| {
            view! {
                <li class=event_class(&e.kind)>
                    <div class="timeline-head">
                        <strong class="timeline-name">{e.kind.clone()}</strong>
                        <span class="muted">{when(&e.at)}</span>
                    </div>
                    <p class="timeline-meta">{e.detail.clone()}</p>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="timeline" id="incident-timeline">{items}</ol> }
}

async fn incident_page(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let (incident, events) = store::alerts::incident(&state.db, &ctx.caller, id).await?;
    let sites = store::alerts::site_names(&state.db, &ctx.caller, [incident.site_id]).await?;
    let area = ctx.area;
    let customer = match area {
        Area::Admin => {
            let c = store::customers::get(&state.db, &ctx.caller, incident.customer_id).await?;
            Some(
                view! { <dt>"Customer"</dt><dd><a href=format!("/admin/customers/{}", c.id)>{c.company_name}</a></dd> },
            )
        }
        Area::Portal => None,
    };
    let acknowledge = (incident.status == "open").then(|| {
        view! {
            <form method="post" action=format!("{}/acknowledge", incident_href(area, id)) class="actions">
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="button">"Acknowledge"</button>
                <span class="muted">"Tells everyone someone is on it; the timeline records who."</span>
            </form>
        }
    });
    let acknowledged = incident.acknowledged_at.map(|at| {
        let by = incident.acknowledged_by.clone().unwrap_or_default();
        view! { <dt>"Acknowledged"</dt><dd>{format!("{} by {by}", when(&at))}</dd> }
    });
    let back = match area {
        Area::Admin => view! { <a href="/admin/incidents">"← All incidents"</a> }.into_any(),
        Area::Portal => view! { <a href="/portal/alerts">"← Alerts"</a> }.into_any(),
    };
    let title = format!(
        "Incident: {} {}",
        sites.get(&incident.site_id).map_or("site", |(n, _)| n.as_str()),
        metric_label(&incident.metric).to_lowercase()
    );
    let body = view! {
        <p>{back}</p>
        <div class="cards cards--run">
            <section class="panel stack" aria-labelledby="i-summary">
                <h2 id="i-summary">"Incident"</h2>
                <dl class="facts">
                    <dt>"Status"</dt><dd id="incident-status">{incident_status(&incident.status)}</dd>
                    <dt>"Site"</dt><dd>{site_link(area, &sites, incident.site_id)}</dd>
                    {customer}
                    <dt>"Metric"</dt><dd>{metric_label(&incident.metric)}</dd>
                    <dt>"Severity"</dt><dd>{severity(Some(&incident.severity))}</dd>
                    <dt>"Opened"</dt><dd>{when(&incident.opened_at)}</dd>
                    {acknowledged}
                    <dt>"Resolved"</dt><dd>{when_opt(&incident.resolved_at)}</dd>
                    <dt>"Fingerprint"</dt><dd><code>{incident.fingerprint.clone()}</code></dd>
                </dl>
                {acknowledge}
            </section>
            <section class="panel" aria-labelledby="i-timeline">
                <h2 id="i-timeline">"Timeline"</h2>
                {timeline(&events)}
            </section>
        </div>
    };
    Ok(page(ctx.chrome(), &title, body).into_response())
}

async fn acknowledge(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let incident = store::alerts::acknowledge(&state.db, &ctx.caller, id).await?;
    store::alert_states::invalidate(&state.cache).await;
    let message = match incident.acknowledged_by {
        Some(by) if by == ctx.caller.actor => "Incident acknowledged.".to_owned(),
        Some(by) => format!("Already acknowledged by {by}."),
        None => "This incident is resolved; there is nothing to acknowledge.".to_owned(),
    };
    ctx.redirect(&incident_href(ctx.area, id), Flash::success(message)).await
}

// ----- channels -----

fn channels_href(area: Area) -> &'static str {
    match area {
        Area::Admin => "/admin/alerts/channels",
        Area::Portal => "/portal/alerts",
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(crate) struct ChannelForm {
    kind: String,
    target: String,
    /// Console only: empty for an administrators' channel.
    customer: String,
    /// Console only: "true" when ticked.
    allow_private: Option<String>,
}

fn channels_table(
    ctx: &PageCtx,
    channels: &[notification_channels::Model],
    customers: &HashMap<Uuid, String>,
) -> impl IntoView {
    let area = ctx.area;
    if channels.is_empty() {
        let message = match area {
            Area::Admin => "No channels yet: incidents open and resolve, but nobody is told.",
            Area::Portal => "No channels yet. Add an e-mail address or a webhook to hear about your sites' incidents.",
        };
        return empty_state(message, None).into_any();
    }
    let admin = area == Area::Admin;
    let rows: Vec<AnyView> = channels
        .iter()
        .map(|c| {
            let base = area.path(&format!("/alerts/channels/{}", c.id));
            let owner = match c.customer_id {
                Some(id) => customer_link(customers, id),
                None => view! { <span>"administrators"</span> }.into_any(),
            };
            let state = if c.enabled {
                badge("enabled".into(), Tone::Good).into_any()
            } else {
                badge("disabled".into(), Tone::Neutral).into_any()
            };
            let private = c.allow_private.then(|| view! { <span class="muted">" (private addresses allowed)"</span> });
            view! {
                <tr>
                    <td>{if c.kind == "email" { "E-mail" } else { "Webhook" }}</td>
                    <td><code>{c.target.clone()}</code>{private}</td>
                    {admin.then(|| view! { <td>{owner}</td> })}
                    <td>{state}</td>
                    <td class="nowrap">
                        <form method="post" action=format!("{base}/test") class="inline">
                            {csrf_input(&ctx.csrf)}
                            <button type="submit" class="button button--secondary button--small">"Send test"</button>
                        </form>
                        " "
                        <a class="button button--danger-quiet button--small" href=format!("{base}/delete")>"Delete"</a>
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect();
    let mut columns = vec![Column::plain("Kind"), Column::plain("Target")];
    if admin {
        columns.push(Column::plain("For"));
    }
    columns.extend([Column::plain("State"), Column::plain("Actions")]);
    table("Notification channels", &columns, None, rows).into_any()
}

fn channel_form(
    ctx: &PageCtx,
    customers: &[berth_core::entities::customers::Model],
    form: ChannelForm,
    errors: &FieldErrors,
) -> impl IntoView {
    let area = ctx.area;
    let kinds =
        vec![("email".to_owned(), "E-mail".to_owned()), ("webhook".to_owned(), "Webhook (JSON POST)".to_owned())];
    let admin_fields = (area == Area::Admin).then(|| {
        let options = crate::admin::sites::customer_options(customers, Some("Administrators (every customer's incidents)"));
        let checked = form.allow_private.as_deref() == Some("true");
        view! {
            {Field::new("customer", "For").select(options).value(form.customer.clone()).error(errors.get("customer_id")).render()}
            <div class="field">
                <label><input type="checkbox" name="allow_private" value="true" checked=checked />
                    " Allow private addresses (webhook on this host or its network)"</label>
                {errors.get("allow_private").map(|e| view! { <p class="field-error">{e}</p> })}
            </div>
        }
    });
    let kind = if form.kind.is_empty() { "email".to_owned() } else { form.kind.clone() };
    view! {
        {error_summary(errors)}
        <form method="post" action=area.path("/alerts/channels") class="panel stack" novalidate>
            {csrf_input(&ctx.csrf)}
            {Field::new("kind", "Kind").select(kinds).value(kind).required().error(errors.get("kind")).render()}
            {Field::new("target", "E-mail address or webhook URL").value(form.target.clone()).required().autocomplete("off")
                .hint("A webhook must be an http(s) URL on the public internet: loopback and private addresses are refused.")
                .error(errors.get("target")).render()}
            {admin_fields}
            <div class="actions">
                <button type="submit" class="button">"Add channel"</button>
            </div>
        </form>
    }
}

/// The console's channels page (also the answer to a refused form, with its errors).
async fn admin_channels_page(state: &WebState, ctx: &PageCtx, form: ChannelForm, errors: FieldErrors) -> PageResult {
    let channels = store::alerts::list_channels(&state.db, &ctx.caller).await?;
    let customers = crate::admin::sites::customer_choices(state, ctx).await?;
    let names =
        crate::admin::customer_names(state, ctx, &customers, channels.iter().filter_map(|c| c.customer_id)).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = view! {
        {crate::admin::alerts::subnav("/admin/alerts/channels")}
        <p class="muted">"Every incident notifies the enabled channels of its customer and the administrators' channels, once when it fires and once when it resolves."</p>
        {channels_table(ctx, &channels, &names)}
        <h2>"Add a channel"</h2>
        {channel_form(ctx, &customers, form, &errors)}
    };
    Ok((status, page(ctx.chrome(), "Notification channels", body)).into_response())
}

async fn admin_channels(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    admin_channels_page(&state, &ctx, ChannelForm::default(), FieldErrors::none()).await
}

/// The portal's alerts page: the customer's open incidents and their channels.
async fn portal_alerts_page(state: &WebState, ctx: &PageCtx, form: ChannelForm, errors: FieldErrors) -> PageResult {
    let channels = store::alerts::list_channels(&state.db, &ctx.caller).await?;
    let open =
        store::alerts::list_incidents(&state.db, &ctx.caller, Some("open"), Page { cursor: None, limit: Some(50) })
            .await?
            .items;
    let acked = store::alerts::list_incidents(
        &state.db,
        &ctx.caller,
        Some("acknowledged"),
        Page { cursor: None, limit: Some(50) },
    )
    .await?
    .items;
    let mut current = open;
    current.extend(acked);
    current.sort_by_key(|i| std::cmp::Reverse(i.opened_at));
    let sites = store::alerts::site_names(&state.db, &ctx.caller, current.iter().map(|i| i.site_id)).await?;
    let incidents = if current.is_empty() {
        empty_state("No open incidents: your sites are fine.", None).into_any()
    } else {
        incidents_table(Area::Portal, &current, &sites, &HashMap::new()).into_any()
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = view! {
        <section aria-labelledby="p-incidents">
            <h2 id="p-incidents">"Open incidents"</h2>
            {incidents}
        </section>
        <section aria-labelledby="p-channels">
            <h2 id="p-channels">"Where we tell you"</h2>
            <p class="muted">"Each incident of your sites is sent to these channels when it fires and again when it resolves."</p>
            {channels_table(ctx, &channels, &HashMap::new())}
            <h3>"Add a channel"</h3>
            {channel_form(ctx, &[], form, &errors)}
        </section>
    };
    // No self-refresh here: it would throw away what is being typed into the form.
    Ok((status, page(ctx.chrome(), "Alerts", body)).into_response())
}

async fn portal_alerts(State(state): State<WebState>, ctx: PageCtx) -> PageResult {
    portal_alerts_page(&state, &ctx, ChannelForm::default(), FieldErrors::none()).await
}

async fn create_channel(State(state): State<WebState>, PostForm { ctx, form }: PostForm<ChannelForm>) -> PageResult {
    let mut errors = FieldErrors::none();
    let customer_id = match form.customer.trim() {
        "" => None,
        c => match c.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.fields.push(berth_core::FieldError::new("customer_id", "choose a customer from the list"));
                None
            }
        },
    };
    if errors.is_empty() {
        let new = store::alerts::NewChannel {
            customer_id,
            kind: form.kind.clone(),
            target: form.target.trim().to_owned(),
            enabled: true,
            allow_private: form.allow_private.as_deref() == Some("true"),
        };
        let subnets = [state.config.runtime.site_subnets.into()];
        errors = match store::alerts::create_channel(&state.db, &ctx.caller, new, &subnets).await {
            Ok(c) => {
                let flash = Flash::success(format!("Channel {} added. Send it a test to check it works.", c.target));
                return ctx.redirect(channels_href(ctx.area), flash).await;
            }
            Err(berth_core::Error::Validation(fields)) => FieldErrors::from_fields(fields),
            Err(berth_core::Error::NotFound(_)) => {
                FieldErrors::from_fields(vec![berth_core::FieldError::new("customer_id", "no such customer")])
            }
            Err(e) => return Err(e.into()),
        };
    }
    match ctx.area {
        Area::Admin => admin_channels_page(&state, &ctx, form, errors).await,
        Area::Portal => portal_alerts_page(&state, &ctx, form, errors).await,
    }
}

/// The caller's channel, or the not-found page (another tenant's is not found).
async fn own_channel(
    state: &WebState,
    ctx: &PageCtx,
    id: Uuid,
) -> Result<notification_channels::Model, crate::error::PageError> {
    store::alerts::list_channels(&state.db, &ctx.caller)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(crate::error::PageError::NotFound)
}

async fn confirm_delete_channel(State(state): State<WebState>, ctx: PageCtx, Path(id): Path<String>) -> PageResult {
    let id = parse_id(&id)?;
    let channel = own_channel(&state, &ctx, id).await?;
    let body = confirm_body(Confirm {
        question: format!("Delete the channel {}?", channel.target),
        detail: Some("Incidents will no longer be sent there. Notices already queued for it are dropped.".into()),
        action: ctx.area.path(&format!("/alerts/channels/{id}/delete")),
        button: "Delete channel",
        cancel_href: channels_href(ctx.area).to_owned(),
        csrf: ctx.csrf.clone(),
    });
    Ok(page(ctx.chrome(), "Delete channel", body).into_response())
}

async fn delete_channel(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    store::alerts::delete_channel(&state.db, &ctx.caller, id).await?;
    ctx.redirect(channels_href(ctx.area), Flash::success("Channel deleted.")).await
}

async fn test_channel(
    State(state): State<WebState>,
    Path(id): Path<String>,
    PostForm { ctx, .. }: PostForm<NoFields>,
) -> PageResult {
    let id = parse_id(&id)?;
    let channel = store::alerts::test_channel(&state.db, &ctx.caller, id).await?;
    let flash = Flash::success(format!("A test notification to {} is on its way.", channel.target));
    ctx.redirect(channels_href(ctx.area), flash).await
}
