//! This process's memory of bearer tokens it resolved a moment ago: token hash → owner, so a
//! script's burst of API calls does not look its token up once per request.
//!
//! Safety rules (docs/api.md, "Bearer token"):
//! - Only successful lookups of an enabled user are kept, for [`TTL`] at most; a failed lookup
//!   (unknown, revoked, disabled) is never kept, so it costs what it always did.
//! - Everything in this process that can make a kept answer wrong forgets it **at once**, after
//!   its commit: revoking a token, any write to a `users` row (disable, password, two-factor,
//!   login bookkeeping) and deleting a customer (whose users go with it). A store function that
//!   writes `users` or `api_tokens` must hold a [`Forget`] guard.
//! - A lookup that raced with such a change cannot put back what it read before it: it notes the
//!   cache's generation *before* it reads the database and keeps its answer only if no change
//!   happened since (see `crate::cache` for the same idea in Redis).
//! - Another Berth process sharing the database is not told: it may accept a revoked token, or
//!   one of a user disabled there, for at most [`TTL`].

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::entities::users;

/// How long a resolved token is trusted without asking the database again. Short on purpose:
/// it is how long *another* Berth process sharing the database may still accept a token revoked
/// (or a user disabled) through this one, which has no way to tell it sooner. This process
/// forgets at once. Five seconds still spares the token query on nearly every call of a busy
/// script, which is what the cache is for.
pub const TTL: Duration = Duration::from_secs(5);

/// At most this many tokens are kept. Only valid tokens get in, so this is only reached by an
/// installation with that many tokens in use within [`TTL`]; then expired entries are dropped,
/// and if that frees nothing a new token is simply not kept (its calls go to the database as
/// before), so the memory stays bounded.
pub const CAPACITY: usize = 10_000;

/// A token's owner as the database answered, with what the "last used" stamp needs.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub user: users::Model,
    pub token_id: Uuid,
    /// The token's `last_used_at` as last written or read by this process.
    pub last_used_at: Option<DateTime<Utc>>,
}

struct Kept {
    entry: Entry,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    /// By the token's SHA-256 (hex), as stored in `api_tokens.token_hash`.
    map: HashMap<String, Kept>,
    /// Incremented by every change that forgets something.
    generation: u64,
}

static CACHE: LazyLock<Mutex<Inner>> = LazyLock::new(|| Mutex::new(Inner::default()));

fn lock() -> MutexGuard<'static, Inner> {
    // Nothing panics while the lock is held; should it, the map is still consistent.
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The kept owner of the token with this hash, if it is younger than [`TTL`].
pub(crate) fn get(hash: &str) -> Option<Entry> {
    let mut inner = lock();
    match inner.map.get(hash) {
        Some(kept) if kept.at.elapsed() < TTL => Some(kept.entry.clone()),
        Some(_) => {
            inner.map.remove(hash);
            None
        }
        None => None,
    }
}

/// The generation to pass to [`put`]: read it before reading the database.
pub(crate) fn generation() -> u64 {
    lock().generation
}

/// Keeps `entry` unless something was forgotten since `generation` was read (the database
/// answer may then be older than the change), or the cache is full of live entries.
pub(crate) fn put(generation: u64, hash: String, entry: Entry) {
    let mut inner = lock();
    if inner.generation != generation {
        return;
    }
    if inner.map.len() >= CAPACITY && !inner.map.contains_key(&hash) {
        inner.map.retain(|_, kept| kept.at.elapsed() < TTL);
        if inner.map.len() >= CAPACITY {
            return;
        }
    }
    inner.map.insert(hash, Kept { entry, at: Instant::now() });
}

/// Records a new "last used" stamp on a kept entry (its age is unchanged).
pub(crate) fn stamped(hash: &str, at: DateTime<Utc>) {
    if let Some(kept) = lock().map.get_mut(hash) {
        kept.entry.last_used_at = Some(at);
    }
}

/// What a change makes stale.
#[derive(Debug)]
enum Target {
    Token(Uuid),
    User(Uuid),
    Customer(Uuid),
    Hash(String),
}

fn forget(target: &Target) {
    let mut inner = lock();
    inner.generation = inner.generation.wrapping_add(1);
    match target {
        Target::Token(id) => inner.map.retain(|_, k| k.entry.token_id != *id),
        Target::User(id) => inner.map.retain(|_, k| k.entry.user.id != *id),
        Target::Customer(id) => inner.map.retain(|_, k| k.entry.user.customer_id != Some(*id)),
        Target::Hash(hash) => {
            inner.map.remove(hash);
        }
    }
}

/// Forgets the token with this hash, as its [`TTL`] running out would (tests that change the
/// database behind the process's back).
pub(crate) fn forget_hash(hash: &str) {
    forget(&Target::Hash(hash.to_owned()));
}

/// Forgets what a change makes stale when it goes out of scope: hold it across the commit, so
/// it runs after it on every path (success, error, or the request being dropped).
#[must_use = "the guard forgets when it is dropped"]
pub(crate) struct Forget(Target);

impl Forget {
    /// One token (revocation).
    pub fn token(id: Uuid) -> Self {
        Self(Target::Token(id))
    }

    /// Every token of a user (any write to their row).
    pub fn user(id: Uuid) -> Self {
        Self(Target::User(id))
    }

    /// Every token of every user of a customer (deleting the customer deletes them).
    pub fn customer(id: Uuid) -> Self {
        Self(Target::Customer(id))
    }
}

impl Drop for Forget {
    fn drop(&mut self) {
        forget(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user_id: Uuid, customer_id: Option<Uuid>, token_id: Uuid) -> Entry {
        let now = Utc::now();
        Entry {
            user: users::Model {
                id: user_id,
                email: "u@example.com".into(),
                password_hash: None,
                role: crate::types::Role::Customer,
                customer_id,
                totp_secret: None,
                totp_enabled: false,
                totp_last_step: None,
                disabled: false,
                session_epoch: 0,
                last_login_at: None,
                created_at: now,
                updated_at: now,
            },
            token_id,
            last_used_at: None,
        }
    }

    #[test]
    fn forgetting_removes_and_stops_racing_lookups() {
        let (user, customer, token) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let hash = format!("test-{token}");
        put(generation(), hash.clone(), entry(user, Some(customer), token));
        assert!(get(&hash).is_some());
        drop(Forget::token(token));
        assert!(get(&hash).is_none(), "a revoked token is forgotten");

        put(generation(), hash.clone(), entry(user, Some(customer), token));
        drop(Forget::user(user));
        assert!(get(&hash).is_none(), "a changed user's tokens are forgotten");

        put(generation(), hash.clone(), entry(user, Some(customer), token));
        drop(Forget::customer(customer));
        assert!(get(&hash).is_none(), "a deleted customer's users' tokens are forgotten");

        // A lookup that read the database before a change keeps nothing.
        let before = generation();
        drop(Forget::user(Uuid::now_v7()));
        put(before, hash.clone(), entry(user, Some(customer), token));
        assert!(get(&hash).is_none(), "an answer older than a change was kept");
    }
}
