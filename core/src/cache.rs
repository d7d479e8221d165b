//! The Redis cache of monitoring reads, with the lifetimes the business asked for: metrics
//! aggregations 5 minutes, dashboard data 1 minute, alert states 30 seconds. Keys live under
//! `BERTH_REDIS_PREFIX` (`berth:metrics:site:<id>:v1:…`, `berth:dashboard:v1`,
//! `berth:alerts:states:v1`); values are JSON.
//!
//! The cache is an optimisation, never a dependency: without Redis (the embedded default) it is
//! off, and when Redis fails every read is a miss and every write is dropped, so the page is
//! answered from the database. A failure is logged once when the cache stops working and once
//! when it works again, not on every request of an outage.
//!
//! Tenancy is the caller's job and is done *before* the cache is read: a key that holds every
//! customer's data is only ever read for administrators (see `store::dashboard::summary` and
//! `store::alert_states`), and a per-site key only after the caller's access to the site was
//! checked.
//!
//! Values that a change must not leave stale ([`Cache::get_fresh`]) carry the generation of
//! their key, a counter that [`Cache::invalidate`] increments. A reader that missed reads the
//! generation *before* it reads the database and stores its answer under that generation; when
//! a change committed in between, the stored answer is already older than the counter and is
//! never served. Deleting the key alone would not do: a slow reader could put back what it read
//! before the change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Per-site metrics answers read from the rollups.
pub const METRICS_TTL: Duration = Duration::from_secs(300);
/// The admin dashboard's aggregates.
pub const DASHBOARD_TTL: Duration = Duration::from_secs(60);
/// Firing and pending alerts.
pub const ALERT_STATES_TTL: Duration = Duration::from_secs(30);

/// The admin dashboard's aggregates (every customer's: administrators only).
pub const DASHBOARD_KEY: &str = "dashboard:v1";
/// Every firing and pending alert (every customer's: administrators only).
pub const ALERT_STATES_KEY: &str = "alerts:states:v1";

/// A handle on the cache, cheap to clone; off without Redis.
#[derive(Clone)]
pub struct Cache {
    redis: Option<ConnectionManager>,
    prefix: Arc<str>,
    /// Set while Redis fails, so an outage is logged once.
    failing: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("on", &self.redis.is_some()).field("prefix", &self.prefix).finish()
    }
}

/// What [`Cache::get_fresh`] found.
#[derive(Debug)]
pub enum Fresh<T> {
    /// A value stored since the last invalidation.
    Hit(T),
    /// Nothing current: read the database and [`Cache::put_fresh`] the answer with this ticket.
    Miss(Ticket),
    /// The cache is off or failing: read the database, store nothing.
    Off,
}

/// The generation a reader saw before it read the database.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(i64);

#[derive(Serialize, Deserialize)]
struct Stamped<T> {
    generation: i64,
    value: T,
}

impl Cache {
    /// No cache: every read goes to the database.
    pub fn off() -> Self {
        Self { redis: None, prefix: Arc::from(""), failing: Arc::new(AtomicBool::new(false)) }
    }

    /// The cache in Redis, keys under `prefix` (`BERTH_REDIS_PREFIX`).
    pub fn redis(conn: ConnectionManager, prefix: &str) -> Self {
        Self { redis: Some(conn), prefix: Arc::from(prefix), failing: Arc::new(AtomicBool::new(false)) }
    }

    pub fn is_on(&self) -> bool {
        self.redis.is_some()
    }

    /// The full Redis key of `key` (prefix included).
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value under `key`, if there is a readable one.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let mut conn = self.redis.clone()?;
        let full = self.key(key);
        let found = redis::cmd("GET").arg(&full).query_async::<Option<String>>(&mut conn).await;
        let text = self.outcome(found)??;
        decode(&full, &text)
    }

    /// Stores `value` under `key` for `ttl`.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Some(mut conn) = self.redis.clone() else { return };
        let full = self.key(key);
        let Some(json) = encode(&full, value) else { return };
        let stored =
            redis::cmd("SET").arg(&full).arg(json).arg("EX").arg(ttl.as_secs().max(1)).query_async(&mut conn).await;
        self.outcome::<()>(stored);
    }

    /// The value under `key` if it was stored since the key's last [`Cache::invalidate`]. One
    /// round trip.
    pub async fn get_fresh<T: DeserializeOwned>(&self, key: &str) -> Fresh<T> {
        let Some(mut conn) = self.redis.clone() else { return Fresh::Off };
        let full = self.key(key);
        let found = redis::cmd("MGET")
            .arg(&full)
            .arg(generation_key(&full))
            .query_async::<(Option<String>, Option<i64>)>(&mut conn)
            .await;
        let Some((text, generation)) = self.outcome(found) else { return Fresh::Off };
        let generation = generation.unwrap_or(0);
        match text.and_then(|t| decode::<Stamped<T>>(&full, &t)) {
            Some(stamped) if stamped.generation == generation => Fresh::Hit(stamped.value),
            _ => Fresh::Miss(Ticket(generation)),
        }
    }

    /// Stores what a reader read after [`Cache::get_fresh`] missed, for `ttl`.
    pub async fn put_fresh<T: Serialize>(&self, key: &str, ticket: Ticket, value: &T, ttl: Duration) {
        self.put(key, &Stamped { generation: ticket.0, value }, ttl).await;
    }

    /// Makes every value of these keys stale: what was stored is dropped, and what a reader
    /// read before this call is never served. Call it after the change committed.
    pub async fn invalidate(&self, keys: &[&str]) {
        let Some(mut conn) = self.redis.clone() else { return };
        let mut pipe = redis::pipe();
        for key in keys {
            let full = self.key(key);
            pipe.cmd("INCR").arg(generation_key(&full)).ignore();
            pipe.cmd("DEL").arg(&full).ignore();
        }
        let done = pipe.query_async::<()>(&mut conn).await;
        self.outcome(done);
    }

    /// The result of a Redis call, logging the first failure of an outage and the recovery.
    fn outcome<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(v) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("The Redis cache works again");
                }
                Some(v)
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "The Redis cache is failing; answering from the database until it works again");
                }
                None
            }
        }
    }
}

fn generation_key(full: &str) -> String {
    format!("{full}:generation")
}

fn decode<T: DeserializeOwned>(key: &str, text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        // An older release's shape under the same key: read past it until it expires.
        Err(e) => {
            tracing::warn!(%key, error = %e, "Ignoring an unreadable cached value");
            None
        }
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Option<String> {
    match serde_json::to_string(value) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::warn!(%key, error = %e, "Cannot encode a value for the cache");
            None
        }
    }
}
