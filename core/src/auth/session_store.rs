//! Where sessions live: in process on the embedded default, in Redis in production (so several
//! Berth replicas share them). One enum, so the session layer has a single concrete type.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::{MemoryStore, SessionStore};

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
