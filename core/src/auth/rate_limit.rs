//! Fixed-window attempt counters for login throttling: in Redis in production (shared by all
//! replicas), in process on the embedded default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

pub enum RateLimiter {
    Memory(Mutex<HashMap<String, (u32, Instant)>>),
    Redis { conn: ConnectionManager, prefix: String },
}

/// The outcome of counting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited { retry_after_secs: u64 },
}

impl RateLimiter {
    pub fn memory() -> Self {
        RateLimiter::Memory(Mutex::new(HashMap::new()))
    }

    pub fn redis(conn: ConnectionManager, prefix: &str) -> Self {
        RateLimiter::Redis { conn, prefix: format!("{prefix}ratelimit:") }
    }

    /// Counts one attempt against `key` and says whether it is over `limit` in `window`.
    pub async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Verdict, redis::RedisError> {
        self.count(key, limit, window, 1).await
    }

    /// Says whether `key` is already over `limit`, without counting an attempt.
    pub async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<Verdict, redis::RedisError> {
        self.count(key, limit, window, 0).await
    }

    async fn count(&self, key: &str, limit: u32, window: Duration, add: u32) -> Result<Verdict, redis::RedisError> {
        let (count, remaining) = match self {
            RateLimiter::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                if map.len() > 100_000 {
                    map.retain(|_, (_, start)| now.duration_since(*start) < window);
                }
                let entry = map.entry(key.to_owned()).or_insert((0, now));
                if now.duration_since(entry.1) >= window {
                    *entry = (0, now);
                }
                entry.0 = entry.0.saturating_add(add);
                (entry.0, window.saturating_sub(now.duration_since(entry.1)).as_secs())
            }
            RateLimiter::Redis { conn, prefix } => {
                let key = format!("{prefix}{key}");
                let mut conn = conn.clone();
                let (count, ttl): (u32, i64) = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("EX")
                    .arg(window.as_secs().max(1))
                    .arg("NX")
                    .ignore()
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(add)
                    .cmd("TTL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await?;
                (count, ttl.max(1) as u64)
            }
        };
        // `check` (add = 0) asks whether the next attempt may proceed: over once at the limit.
        let over = if add == 0 { count >= limit } else { count > limit };
        Ok(if over { Verdict::Limited { retry_after_secs: remaining.max(1) } } else { Verdict::Allowed })
    }

    /// Forgets `key` (after a successful login, its failures no longer count).
    pub async fn clear(&self, key: &str) -> Result<(), redis::RedisError> {
        match self {
            RateLimiter::Memory(map) => {
                map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
                Ok(())
            }
            RateLimiter::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                redis::cmd("DEL").arg(format!("{prefix}{key}")).query_async(&mut conn).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_window_limits_and_clears() {
        let limiter = RateLimiter::memory();
        let window = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.hit("k", 3, window).await.expect("memory"), Verdict::Allowed);
        }
        assert!(matches!(limiter.check("k", 3, window).await.expect("memory"), Verdict::Limited { .. }));
        assert!(matches!(limiter.hit("k", 3, window).await.expect("memory"), Verdict::Limited { .. }));
        limiter.clear("k").await.expect("memory");
        assert_eq!(limiter.check("k", 3, window).await.expect("memory"), Verdict::Allowed);
    }
}
