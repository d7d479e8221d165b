//! Berth's server-rendered pages: the admin console (`/admin`), the customer portal (`/portal`),
//! and the public pages (landing, one-time set-password link).
//!
//! Pages are plain axum handlers that build a Leptos view and render it to an HTML string on
//! the server: no hydration, no WASM, no JavaScript. Every form POSTs
//! (`application/x-www-form-urlencoded`) to a handler here that calls the same tenant-scoped
//! store functions as the REST API, then redirects (303) with a flash message or re-renders the
//! form with the store's per-field errors. docs/ui.md explains how to add a page.
//!
//! Layout of this crate:
//! - [`layout`]: the HTML document, header, navigation and flash message around every page;
//! - [`components`]: tables, form fields, badges, confirmation pages, empty states, QR codes;
//! - [`auth`]: sign-in and sign-out, the signed-in page context, CSRF and flash messages;
//! - [`error`]: how failures become pages (not found, sign in, try again);
//! - [`admin`], [`portal`], [`account`], [`public`]: the pages, by area;
//! - [`site_ops`]: start, stop and restart of a site, for both areas;
//! - [`site_backups`]: a site's backups (back up, download, restore), for both areas;
//! - [`monitoring`]: incidents and notification channels, for both areas;
//! - [`site_usage`]: a site's usage charts, for both areas.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_core::auth::rate_limit::RateLimiter;
use berth_core::config::Config;
use berth_core::crypto::Keys;
use sea_orm::DatabaseConnection;

pub mod account;
pub mod admin;
pub mod auth;
pub mod components;
pub mod error;
pub mod forms;
pub mod layout;
pub mod monitoring;
pub mod portal;
pub mod public;
pub mod site_backups;
pub mod site_ops;
pub mod site_usage;

/// What the pages need from the server.
#[derive(Clone)]
pub struct WebState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub limiter: Arc<RateLimiter>,
    /// Site operations (start, stop, restart, update, delete, logs): the same calls the REST API
    /// makes, so the console and the API cannot diverge.
    pub ops: berth_ops::Ops,
    /// The Redis cache of monitoring reads (dashboard, alert states); off without Redis.
    pub cache: berth_core::cache::Cache,
}

/// The one stylesheet, hand-written, served by the app.
const STYLESHEET: &str = include_str!("style.css");
pub const STYLESHEET_PATH: &str = "/assets/berth.css";

/// Every page route. The server wraps this router in the session layer.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route(STYLESHEET_PATH, get(stylesheet))
        .merge(public::routes())
        .merge(auth::routes())
        .merge(account::routes())
        .merge(admin::routes())
        .merge(portal::routes())
        .merge(site_ops::routes())
        .merge(site_backups::routes())
        .merge(monitoring::routes())
        .fallback(error::not_found_page)
        .with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], STYLESHEET)
}
