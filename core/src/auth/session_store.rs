//! Where sessions live: in process on the embedded default, in Redis in production (so several
//! Berth replicas share them). One enum, so the session layer has a single concrete type.
//!
//! Both forget expired sessions: Redis by the key's expiry, the memory store by a sweep at most
//! once a minute when sessions are created (tower-sessions' own memory store never removes
//! one, so a stream of visitors grew it without bound).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::SessionStore;

#[derive(Clone, Debug)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match self {
            Store::Memory(s) => s.create(record).await,
            Store::Redis(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> Result<()> {
        match self {
            Store::Memory(s) => s.save(record).await,
            Store::Redis(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match self {
            Store::Memory(s) => s.load(id).await,
            Store::Redis(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> Result<()> {
        match self {
            Store::Memory(s) => s.delete(id).await,
            Store::Redis(s) => s.delete(id).await,
        }
    }
}

impl Store {
    /// The in-process store of the embedded default.
    pub fn memory() -> Self {
        Store::Memory(MemoryStore::default())
    }
}

/// How often the memory store looks for expired sessions.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Sessions in process, expired ones removed.
#[derive(Clone, Debug)]
pub struct MemoryStore(Arc<Mutex<Sessions>>);

#[derive(Debug)]
struct Sessions {
    records: HashMap<Id, Record>,
    swept_at: Instant,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Sessions { records: HashMap::new(), swept_at: Instant::now() })))
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sessions are held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired session now.
    pub fn sweep(&self) {
        let mut sessions = self.lock();
        let now = OffsetDateTime::now_utc();
        sessions.records.retain(|_, r| r.expiry_date > now);
        sessions.swept_at = Instant::now();
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        if self.lock().swept_at.elapsed() >= SWEEP_EVERY {
            self.sweep();
        }
        let mut sessions = self.lock();
        while sessions.records.contains_key(&record.id) {
            record.id = Id::default();
        }
        sessions.records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.lock().records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut sessions = self.lock();
        match sessions.records.get(id) {
            Some(r) if r.expiry_date > OffsetDateTime::now_utc() => Ok(Some(r.clone())),
            Some(_) => {
                sessions.records.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.lock().records.remove(id);
        Ok(())
    }
}

/// Sessions as JSON under `<prefix>session:<id>`, expiring with the session itself.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish()
    }
}

impl RedisStore {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self { conn, prefix: format!("{prefix}session:") }
    }

    fn key(&self, id: &Id) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Writes the record; with `only_new`, refuses to overwrite (id collision on create).
    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        let ttl = (record.expiry_date - time::OffsetDateTime::now_utc()).whole_seconds();
        if ttl <= 0 {
            self.delete(&record.id).await?;
            return Ok(true);
        }
        let body = serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&record.id)).arg(body).arg("EX").arg(ttl);
        if only_new {
            cmd.arg("NX");
        }
        let mut conn = self.conn.clone();
        let reply: Option<String> = cmd.query_async(&mut conn).await.map_err(backend)?;
        Ok(reply.is_some())
    }
}

fn backend(e: redis::RedisError) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A 128-bit random id practically never collides; retry anyway rather than overwrite.
        while !self.write(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let mut conn = self.conn.clone();
        let body: Option<String> = conn.get(self.key(id)).await.map_err(backend)?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| Error::Decode(e.to_string()))).transpose()
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(self.key(id)).await.map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_in: time::Duration) -> Record {
        Record { id: Id::default(), data: Default::default(), expiry_date: OffsetDateTime::now_utc() + expires_in }
    }

    #[tokio::test]
    async fn expired_sessions_are_not_loaded_and_are_swept() {
        let store = MemoryStore::default();
        let mut live = record(time::Duration::hours(12));
        store.create(&mut live).await.expect("create");
        for _ in 0..1000 {
            store.create(&mut record(time::Duration::seconds(-1))).await.expect("create");
        }
        let mut gone = record(time::Duration::seconds(-1));
        store.create(&mut gone).await.expect("create");
        assert_eq!(store.load(&gone.id).await.expect("load"), None, "an expired session is not loaded");
        assert_eq!(store.len(), 1001, "loading an expired session removed it");
        store.sweep();
        assert_eq!(store.len(), 1, "only the live session is left");
        assert!(store.load(&live.id).await.expect("load").is_some());
    }

    #[tokio::test]
    async fn creating_sessions_sweeps_once_a_minute() {
        let store = MemoryStore::default();
        for _ in 0..10 {
            store.create(&mut record(time::Duration::seconds(-1))).await.expect("create");
        }
        store.lock().swept_at = Instant::now() - SWEEP_EVERY;
        store.create(&mut record(time::Duration::hours(1))).await.expect("create");
        assert_eq!(store.len(), 1);
    }
}
