//! What every request handler can reach.

use std::sync::Arc;

use berth_core::auth::rate_limit::RateLimiter;
use berth_core::config::Config;
use berth_core::crypto::Keys;
use berth_ops::Ops;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;

use crate::http::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub redis: Option<ConnectionManager>,
    /// The Redis cache of monitoring reads (`berth_core::cache`); off without Redis.
    pub cache: berth_core::cache::Cache,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Metrics,
    /// Site operations (start, stop, restart, update, delete, logs), shared with the console;
    /// they hold the container runtime, `None` when BERTH_DOCKER_HOST is off.
    pub ops: Ops,
}
