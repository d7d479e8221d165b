//! REST API v1. Each resource module ends in `fn routes()`; the OpenAPI document is collected
//! from the same `routes!` registrations, so a route cannot be served without being documented.

pub mod alert_silences;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod backup_drills;
pub mod backups;
pub mod customer_users;
pub mod customers;
pub mod flows;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod plans;
pub mod site_backup_policy;
pub mod site_logs;
pub mod site_metrics;
pub mod site_restore;
pub mod site_volumes;
pub mod sites;
pub mod tokens;
pub mod webhooks;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::http::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", version = "1", description = "Multi-tenant hosting control plane. Errors are RFC 7807 problem+json."),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Sign-in, sessions, passwords, TOTP"),
        (name = "customers", description = "Customers and their portal users (admin)"),
        (name = "sites", description = "Customer sites"),
        (name = "plans", description = "Plans on offer"),
        (name = "tokens", description = "API tokens of the caller"),
        (name = "audit", description = "Audit log (admin)"),
        (name = "webhooks", description = "Signed webhooks in (signup form)"),
        (name = "jobs", description = "Background jobs and their history"),
        (name = "flows", description = "Flow runs with their steps"),
        (name = "alerts", description = "Alerts, incidents, notification channels and alert rules"),
        (name = "backups", description = "Site backups: back up now, list, download, restore drills"),
        (name = "health", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("berth_…").build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

/// All routes with their OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(auth::routes())
        .merge(customers::routes())
        .merge(customer_users::routes())
        .merge(sites::routes())
        .merge(plans::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .merge(jobs::routes())
        .merge(flows::routes())
        .merge(alerts::routes())
        .merge(alert_silences::routes())
        .merge(backups::routes())
        .merge(backup_drills::routes())
        .routes(utoipa_axum::routes!(openapi_json))
        .fallback(|| async { ApiError::RouteNotFound });
    let (router, mut doc) =
        OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1).merge(health::routes()).split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, doc)
}

/// This document.
#[utoipa::path(get, operation_id = "api_openapi_json", path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    // Built once from the same registrations that serve the routes, so it cannot drift.
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOC.get_or_init(|| openapi::finish(&router().1).to_string());
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}
