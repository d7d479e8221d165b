//! Alerting: the alerts of sites, the incidents their firings open (with their timelines),
//! notification channels, and the rules (admins). Customers see their own sites' alerts and
//! incidents and their own channels; another tenant's is 404. docs/monitoring.md#alerts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::entities::{alert_rules, alerts, incident_events, incidents, notification_channels};
use berth_core::store::alert_states;
use berth_core::store::alerts::{self as store, NewChannel, NewRule, RulePatch};
use berth_core::store::page::Page;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(list_incidents))
        .routes(routes!(get_incident))
        .routes(routes!(acknowledge))
        .routes(routes!(list_channels, create_channel))
        .routes(routes!(delete_channel))
        .routes(routes!(test_channel))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// `cpu`, `memory` or `down`.
    pub metric: String,
    pub rule_id: Uuid,
    /// `ok`, `pending`, `firing` or `resolved`.
    pub state: String,
    /// `warning` or `critical` while pending or firing.
    pub severity: Option<String>,
    /// The last value evaluated: CPU % of one core, memory % of the limit, seconds down.
    pub value: Option<f64>,
    pub pending_since: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Stable for a site's metric across firings.
    pub fingerprint: String,
    pub incident_id: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
}

impl From<alerts::Model> for AlertDto {
    fn from(a: alerts::Model) -> Self {
        Self {
            id: a.id,
            site_id: a.site_id,
            customer_id: a.customer_id,
            metric: a.metric,
            rule_id: a.rule_id,
            state: a.state,
            severity: a.severity,
            value: a.value,
            pending_since: a.pending_since,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            fingerprint: a.fingerprint,
            incident_id: a.incident_id,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// Only alerts in this state: `ok`, `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertDto>,
    pub next_cursor: Option<Uuid>,
}

/// Alerts, one per site and metric, newest first.
#[utoipa::path(get, operation_id = "alerts_list", path = "/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, body = AlertPage), (status = 422, body = Problem)))]
async fn list_alerts(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> ApiResult<Json<AlertPage>> {
    let page = Page { cursor: q.cursor, limit: q.limit };
    // Firing and pending alerts come from the 30-second cache for administrators.
    let found = alert_states::list(&state.db, &state.cache, &auth.caller, q.state.as_deref(), page).await?;
    Ok(Json(AlertPage { items: found.items.into_iter().map(Into::into).collect(), next_cursor: found.next_cursor }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDto {
    pub id: Uuid,
    pub site_id: Uuid,
    pub customer_id: Uuid,
    pub alert_id: Uuid,
    pub metric: String,
    /// The severity it fired with.
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub fingerprint: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<incidents::Model> for IncidentDto {
    fn from(i: incidents::Model) -> Self {
        Self {
            id: i.id,
            site_id: i.site_id,
            customer_id: i.customer_id,
            alert_id: i.alert_id,
            metric: i.metric,
            severity: i.severity,
            status: i.status,
            fingerprint: i.fingerprint,
            opened_at: i.opened_at,
            acknowledged_at: i.acknowledged_at,
            acknowledged_by: i.acknowledged_by,
            resolved_at: i.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentEventDto {
    pub at: DateTime<Utc>,
    /// `fired`, `notified`, `silenced` (a silence held the notifications back), `acknowledged`,
    /// `remediated` or `resolved`.
    pub kind: String,
    pub detail: String,
}

impl From<incident_events::Model> for IncidentEventDto {
    fn from(e: incident_events::Model) -> Self {
        Self { at: e.at, kind: e.kind, detail: e.detail }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentDto,
    /// The timeline, oldest first.
    pub events: Vec<IncidentEventDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Only incidents in this status: `open`, `acknowledged` or `resolved`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentDto>,
    pub next_cursor: Option<Uuid>,
}

/// Incidents, newest first.
#[utoipa::path(get, operation_id = "incidents_list", path = "/incidents", tag = "alerts", params(IncidentsQuery),
    responses((status = 200, body = IncidentPage), (status = 422, body = Problem)))]
async fn list_incidents(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<IncidentsQuery>,
) -> ApiResult<Json<IncidentPage>> {
    let page = Page { cursor: q.cursor, limit: q.limit };
    let found = store::list_incidents(&state.db, &auth.caller, q.status.as_deref(), page).await?;
    Ok(Json(IncidentPage { items: found.items.into_iter().map(Into::into).collect(), next_cursor: found.next_cursor }))
}

/// One incident with its timeline.
#[utoipa::path(get, operation_id = "incidents_get", path = "/incidents/{id}", tag = "alerts", params(("id" = Uuid, Path)),
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem)))]
async fn get_incident(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<IncidentDetail>> {
    let (incident, events) = store::incident(&state.db, &auth.caller, id).await?;
    Ok(Json(IncidentDetail { incident: incident.into(), events: events.into_iter().map(Into::into).collect() }))
}

/// Acknowledges an open incident (someone is on it); no change to one already acknowledged or
/// resolved.
#[utoipa::path(post, operation_id = "incidents_acknowledge", path = "/incidents/{id}/acknowledge", tag = "alerts",
    params(("id" = Uuid, Path)), responses((status = 200, body = IncidentDto), (status = 404, body = Problem)))]
async fn acknowledge(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<IncidentDto>> {
    let incident = store::acknowledge(&state.db, &auth.caller, id).await?;
    alert_states::invalidate(&state.cache).await;
    Ok(Json(incident.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelDto {
    pub id: Uuid,
    /// `null`: an administrators' channel (every customer's incidents).
    pub customer_id: Option<Uuid>,
    /// `email`, `webhook`, `slack` or `discord` (the last three: a URL, posted JSON of that shape).
    pub kind: String,
    pub target: String,
    pub enabled: bool,
    pub allow_private: bool,
    pub created_at: DateTime<Utc>,
}

impl From<notification_channels::Model> for ChannelDto {
    fn from(c: notification_channels::Model) -> Self {
        Self {
            id: c.id,
            customer_id: c.customer_id,
            kind: c.kind,
            target: c.target,
            enabled: c.enabled,
            allow_private: c.allow_private,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `email`, `webhook`, `slack` or `discord` (the last three: a URL, posted JSON of that shape).
    pub kind: String,
    /// An e-mail address, or an http(s) URL that does not resolve to a loopback, private,
    /// link-local or site network address.
    pub target: String,
    /// Admins only: the customer whose incidents it receives; absent for an admin channel.
    /// Customers' channels are always their own.
    pub customer_id: Option<Uuid>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Admins only: let a webhook reach private addresses.
    #[serde(default)]
    pub allow_private: bool,
}

/// The caller's notification channels (admins: all).
#[utoipa::path(get, operation_id = "notification_channels_list", path = "/notification-channels", tag = "alerts",
    responses((status = 200, body = Vec<ChannelDto>)))]
async fn list_channels(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<ChannelDto>>> {
    Ok(Json(store::list_channels(&state.db, &auth.caller).await?.into_iter().map(Into::into).collect()))
}

/// Adds a notification channel.
#[utoipa::path(post, operation_id = "notification_channels_create", path = "/notification-channels", tag = "alerts",
    request_body = CreateChannel,
    responses((status = 201, body = ChannelDto), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateChannel>,
) -> ApiResult<(StatusCode, Json<ChannelDto>)> {
    let new = NewChannel {
        customer_id: body.customer_id,
        kind: body.kind,
        target: body.target,
        enabled: body.enabled.unwrap_or(true),
        allow_private: body.allow_private,
    };
    let subnets = [state.config.runtime.site_subnets.into()];
    let channel = store::create_channel(&state.db, &auth.caller, new, &subnets).await?;
    Ok((StatusCode::CREATED, Json(channel.into())))
}

/// Removes one of the caller's notification channels.
#[utoipa::path(delete, operation_id = "notification_channels_delete", path = "/notification-channels/{id}", tag = "alerts",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    store::delete_channel(&state.db, &auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a test notice to one of the caller's channels, through the same delivery path as
/// real notifications (202: it is sent by a job).
#[utoipa::path(post, operation_id = "notification_channels_test", path = "/notification-channels/{id}/test", tag = "alerts",
    params(("id" = Uuid, Path)), responses((status = 202, body = ChannelDto), (status = 404, body = Problem)))]
async fn test_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<ChannelDto>)> {
    let channel = store::test_channel(&state.db, &auth.caller, id).await?;
    Ok((StatusCode::ACCEPTED, Json(channel.into())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleDto {
    pub id: Uuid,
    /// `cpu` (% of one core), `memory` (% of the limit), `down` (seconds without a passing
    /// uptime check), `restarts` (container restarts in the last 10 minutes), `certificate`
    /// (days until the site's certificate expires: lower is worse, critical ≤ warning) or
    /// `disk` (% of the plan's storage used by the site's volume).
    pub metric: String,
    /// `global`, `plan` or `site`; the most specific enabled rule applies.
    pub scope: String,
    pub plan_id: Option<String>,
    pub site_id: Option<Uuid>,
    pub warning: f64,
    pub critical: f64,
    /// How long a breach must last before the alert fires.
    pub for_seconds: i32,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
}

impl From<alert_rules::Model> for RuleDto {
    fn from(r: alert_rules::Model) -> Self {
        Self {
            id: r.id,
            metric: r.metric,
            scope: r.scope,
            plan_id: r.plan_id,
            site_id: r.site_id,
            warning: r.warning,
            critical: r.critical,
            for_seconds: r.for_seconds,
            enabled: r.enabled,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub for_seconds: Option<i32>,
    pub enabled: Option<bool>,
}

/// The alert rules (admins).
#[utoipa::path(get, operation_id = "alert_rules_list", path = "/alert-rules", tag = "alerts",
    responses((status = 200, body = Vec<RuleDto>), (status = 403, body = Problem)))]
async fn list_rules(State(state): State<AppState>, Admin(auth): Admin) -> ApiResult<Json<Vec<RuleDto>>> {
    Ok(Json(store::rules(&state.db, &auth.caller).await?.into_iter().map(Into::into).collect()))
}

/// Changes a rule's thresholds, `for` duration or switch (admins).
#[utoipa::path(patch, operation_id = "alert_rules_update", path = "/alert-rules/{id}", tag = "alerts",
    params(("id" = Uuid, Path)), request_body = UpdateRule,
    responses((status = 200, body = RuleDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateRule>,
) -> ApiResult<Json<RuleDto>> {
    let patch = RulePatch {
        warning: body.warning,
        critical: body.critical,
        for_seconds: body.for_seconds,
        enabled: body.enabled,
    };
    Ok(Json(store::update_rule(&state.db, &auth.caller, id, patch).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// `cpu`, `memory` or `down`.
    pub metric: String,
    /// `plan` or `site`.
    pub scope: String,
    /// With scope `plan`.
    pub plan_id: Option<String>,
    /// With scope `site`.
    pub site_id: Option<Uuid>,
    pub warning: f64,
    pub critical: f64,
    pub for_seconds: i32,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Adds a plan's or a site's own rule for a metric (admins); it overrides the global one.
#[utoipa::path(post, operation_id = "alert_rules_create", path = "/alert-rules", tag = "alerts",
    request_body = CreateRule,
    responses((status = 201, body = RuleDto), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiJson(body): ApiJson<CreateRule>,
) -> ApiResult<(StatusCode, Json<RuleDto>)> {
    let new = NewRule {
        metric: body.metric,
        scope: body.scope,
        plan_id: body.plan_id,
        site_id: body.site_id,
        warning: body.warning,
        critical: body.critical,
        for_seconds: body.for_seconds,
        enabled: body.enabled.unwrap_or(true),
    };
    Ok((StatusCode::CREATED, Json(store::create_rule(&state.db, &auth.caller, new).await?.into())))
}

/// Removes a plan's or a site's rule (admins); the global rules can be edited, not deleted (409).
#[utoipa::path(delete, operation_id = "alert_rules_delete", path = "/alert-rules/{id}", tag = "alerts",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_rule(
    State(state): State<AppState>,
    Admin(auth): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    store::delete_rule(&state.db, &auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
