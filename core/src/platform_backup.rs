//! Platform backup and restore: Berth's own database, copied consistently into a folder with a
//! signed manifest, and put back by `berth restore-platform`.
//!
//! - **PostgreSQL**: `pg_dump --format=custom --no-owner`, its output streamed to the file and
//!   hashed on the way. Restored with `pg_restore --clean --if-exists --no-owner
//!   --single-transaction`: all of it or none of it.
//! - **SQLite**: `VACUUM INTO` a new file (a consistent copy, taken while Berth runs). Restored
//!   by replacing the database file with one atomic rename, the old file (and its `-wal`/`-shm`)
//!   kept aside as `<db>.before-restore-<time>`.
//!
//! A backup is a folder `berth-<UTC time>` holding the data file and `manifest.json`: time,
//! database kind, file, size, SHA-256, Berth version, schema level (the last migration applied)
//! and an HMAC-SHA256 signature under a key derived from `BERTH_SECRET_KEY`. The secret key
//! itself is never in a backup. A restore checks, before it touches anything, that the manifest
//! is signed by this installation's key, that the file matches its size and checksum, that the
//! backup is for the configured kind of database and a schema this Berth knows, and that no one
//! else uses the database. The folder is written as `<name>.partial` and renamed when complete,
//! so a crash never leaves something that looks like a backup. Everything is private (0700
//! folders, 0600 files): the database holds password hashes and sealed secrets.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backup_retention::{self, Outcome, Policy};
use crate::config::Config;
use crate::crypto::Keys;

/// The manifest's `format`: a file with any other is not a Berth platform backup.
pub const FORMAT: &str = "berth-platform-backup/1";
pub const MANIFEST: &str = "manifest.json";
/// The signature's context (see [`Keys::sign`]).
const SIGNING_CONTEXT: &str = "platform-backup";
/// A manifest is a few hundred bytes; anything much larger is not one.
const MANIFEST_MAX: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    fn of(backend: DbBackend) -> Result<Self, Error> {
        match backend {
            DbBackend::Postgres => Ok(Self::Postgres),
            DbBackend::Sqlite => Ok(Self::Sqlite),
            other => Err(Error::Unsupported(format!("{other:?}"))),
        }
    }

    fn of_url(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    fn data_file(self) -> &'static str {
        match self {
            Self::Postgres => "berth.pgdump",
            Self::Sqlite => "berth.sqlite",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        })
    }
}

/// What `manifest.json` says about the data file beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub created_at: DateTime<Utc>,
    pub database: DatabaseKind,
    /// The data file's name, in the manifest's folder.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub berth_version: String,
    /// The last migration applied to the database when it was backed up.
    pub schema: String,
    /// HMAC-SHA256 of the fields above under this installation's signing key.
    pub signature: String,
}

impl Manifest {
    fn signed_text(&self) -> String {
        [
            self.format.as_str(),
            &self.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            &format!("{:?}", self.database),
            &self.file,
            &self.size.to_string(),
            &self.sha256,
            &self.berth_version,
            &self.schema,
        ]
        .join("\n")
    }
}

/// Why a backup or restore did not happen; each message is one line a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} is not a Berth platform backup: {reason}")]
    NotABackup { path: String, reason: String },
    #[error("{path} was not made by this Berth: its signature does not match this BERTH_SECRET_KEY (restore with the key the backup was made under)")]
    Foreign { path: String },
    #[error("{path} is corrupt: {what} does not match its manifest; nothing was restored")]
    Corrupt { path: String, what: &'static str },
    #[error("{path} is a {backup} backup but the configured database is {configured}")]
    WrongDatabase { path: String, backup: DatabaseKind, configured: DatabaseKind },
    #[error("{path} was made by a newer Berth (schema {schema}); this Berth knows schemas up to {known}")]
    NewerSchema { path: String, schema: String, known: String },
    #[error("{0}")]
    InUse(String),
    #[error("database kind {0} is not supported")]
    Unsupported(String),
    #[error("{0}")]
    Tool(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
    #[error("database error: {0}")]
    Db(String),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { what, path: path.display().to_string(), source }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::Db(e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// A backup written: its folder and manifest.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Backs up the database `db` (configured by `config`) into a new folder under `out_dir`.
pub async fn backup(db: &DatabaseConnection, config: &Config, keys: &Keys, out_dir: &Path) -> Result<Written, Error> {
    let kind = DatabaseKind::of(db.get_database_backend())?;
    let created_at = Utc::now();
    let name = format!("berth-{}", created_at.format("%Y%m%dT%H%M%S%.6fZ"));
    create_dirs(out_dir)?;
    let partial = out_dir.join(format!("{name}.partial"));
    private_dir(&partial)?;
    let file = kind.data_file();
    let data = partial.join(file);
    let schema = schema_level(db).await?;
    let (size, sha256) = match kind {
        DatabaseKind::Postgres => dump_postgres(&config.server.effective_database_url(), &data).await?,
        DatabaseKind::Sqlite => vacuum_into(db, &data).await?,
    };
    let mut manifest = Manifest {
        format: FORMAT.into(),
        created_at,
        database: kind,
        file: file.into(),
        size,
        sha256,
        berth_version: env!("CARGO_PKG_VERSION").into(),
        schema,
        signature: String::new(),
    };
    manifest.signature = keys.sign(SIGNING_CONTEXT, &manifest.signed_text());
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Tool(format!("manifest: {e}")))?;
    write_private(&partial.join(MANIFEST), &text).await?;
    let dir = out_dir.join(&name);
    tokio::fs::rename(&partial, &dir).await.map_err(io("cannot finish backup", &dir))?;
    sync_dir(out_dir);
    // Named in full wherever it is reported (the default data dir is relative).
    let dir = tokio::fs::canonicalize(&dir).await.unwrap_or(dir);
    Ok(Written { dir, manifest })
}

/// The last migration applied (`seaql_migrations`), or `none` on an empty database.
async fn schema_level(db: &impl ConnectionTrait) -> Result<String, Error> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<String>("", "version")?,
        None => "none".into(),
    })
}

/// The connection string for libpq tools without its password, and the password apart (given
/// to them as `PGPASSWORD`, so it never shows in a process list).
fn libpq_target(url: &str) -> Result<(String, Option<String>), Error> {
    let mut parsed = url::Url::parse(url).map_err(|_| Error::Tool("BERTH_DATABASE_URL is not a URL".into()))?;
    let password = parsed.password().map(percent_decode);
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn libpq_command(program: &str, url: &str) -> Result<(tokio::process::Command, String), Error> {
    let (target, password) = libpq_target(url)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    Ok((cmd, target))
}

/// `pg_dump` in custom format, streamed into `path` and hashed on the way.
async fn dump_postgres(url: &str, path: &Path) -> Result<(u64, String), Error> {
    let (mut cmd, target) = libpq_command("pg_dump", url)?;
    cmd.args(["--format=custom", "--no-owner", "--no-password", "--dbname", target.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        cmd.spawn().map_err(|e| Error::Tool(format!("cannot run pg_dump (Debian: postgresql-client): {e}")))?;
    let mut stdout = child.stdout.take().ok_or_else(|| Error::Tool("pg_dump has no output".into()))?;
    let mut stderr = child.stderr.take().ok_or_else(|| Error::Tool("pg_dump has no error output".into()))?;
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut out = create_private(path).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = stdout.read(&mut buf).await.map_err(io("cannot read pg_dump's output for", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n]).await.map_err(io("cannot write", path))?;
    }
    out.sync_all().await.map_err(io("cannot write", path))?;
    let status = child.wait().await.map_err(|e| Error::Tool(format!("pg_dump: {e}")))?;
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(Error::Tool(format!("pg_dump failed ({status}): {}", one_line(&errors))));
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// `VACUUM INTO`: a consistent copy of the live SQLite database, taken through Berth's own
/// connection (so it waits for no other writer of ours).
async fn vacuum_into(db: &DatabaseConnection, path: &Path) -> Result<(u64, String), Error> {
    let text = path.to_str().ok_or_else(|| Error::Tool(format!("{} is not UTF-8", path.display())))?;
    let quoted = text.replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{quoted}'")).await?;
    set_private(path)?;
    // The copy is closed by SQLite; flush it to disk before it counts.
    let file = tokio::fs::File::open(path).await.map_err(io("cannot open", path))?;
    file.sync_all().await.map_err(io("cannot write", path))?;
    hash_file(path).await
}

/// Size and SHA-256 of a file, read in chunks.
pub async fn hash_file(path: &Path) -> Result<(u64, String), Error> {
    let mut file = tokio::fs::File::open(path).await.map_err(io("cannot open", path))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// A backup found on disk, its manifest checked against the key and its file.
#[derive(Debug, Clone)]
pub struct Verified {
    pub dir: PathBuf,
    pub data: PathBuf,
    pub manifest: Manifest,
}

/// Finds the backup at `path` (its folder, its manifest or its data file) and checks its
/// manifest's format and signature, and its file's size and checksum.
pub async fn verify(path: &Path, keys: &Keys) -> Result<Verified, Error> {
    let shown = path.display().to_string();
    let not_a_backup = |reason: &str| Error::NotABackup { path: shown.clone(), reason: reason.to_owned() };
    let meta = tokio::fs::metadata(path).await.map_err(io("cannot read", path))?;
    let dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    };
    let manifest_path = dir.join(MANIFEST);
    let manifest_meta =
        tokio::fs::metadata(&manifest_path).await.map_err(|_| not_a_backup("no manifest.json beside it"))?;
    if manifest_meta.len() > MANIFEST_MAX {
        return Err(not_a_backup("manifest.json is too large"));
    }
    let text = tokio::fs::read(&manifest_path).await.map_err(io("cannot read", &manifest_path))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| not_a_backup(&format!("manifest.json: {e}")))?;
    if manifest.format != FORMAT {
        return Err(not_a_backup(&format!("unknown format `{}`", manifest.format)));
    }
    if !keys.verify(SIGNING_CONTEXT, &manifest.signed_text(), &manifest.signature) {
        return Err(Error::Foreign { path: shown.clone() });
    }
    let plain_name = !manifest.file.is_empty()
        && manifest.file != "."
        && manifest.file != ".."
        && !manifest.file.contains(['/', '\\', '\0']);
    if !plain_name {
        return Err(not_a_backup("the manifest names a file outside its folder"));
    }
    let data = dir.join(&manifest.file);
    let (size, sha256) = match hash_file(&data).await {
        Ok(found) => found,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Corrupt { path: shown.clone(), what: "its data file is missing, which" })
        }
        Err(e) => return Err(e),
    };
    if size != manifest.size {
        return Err(Error::Corrupt { path: shown.clone(), what: "the data file's size" });
    }
    if sha256 != manifest.sha256 {
        return Err(Error::Corrupt { path: shown, what: "the data file's SHA-256" });
    }
    Ok(Verified { dir, data, manifest })
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// SQLite: where the database file that was replaced is kept.
    pub kept_aside: Option<PathBuf>,
    /// PostgreSQL with `--force`: how many other sessions were ended.
    pub sessions_ended: u64,
}

/// Restores the backup at `path` into the configured database. `known_schemas` are the
/// migrations this Berth knows, oldest first; `force` ends other PostgreSQL sessions instead of
/// refusing (it never applies to SQLite, whose file cannot be swapped under a running process).
pub async fn restore(
    config: &Config,
    keys: &Keys,
    path: &Path,
    known_schemas: &[String],
    force: bool,
) -> Result<Restored, Error> {
    let found = verify(path, keys).await?;
    let shown = path.display().to_string();
    let url = config.server.effective_database_url();
    let configured = DatabaseKind::of_url(&url);
    if found.manifest.database != configured {
        return Err(Error::WrongDatabase { path: shown, backup: found.manifest.database, configured });
    }
    if found.manifest.schema != "none" && !known_schemas.contains(&found.manifest.schema) {
        let known = known_schemas.last().cloned().unwrap_or_else(|| "none".into());
        return Err(Error::NewerSchema { path: shown, schema: found.manifest.schema.clone(), known });
    }
    match configured {
        DatabaseKind::Postgres => {
            let sessions_ended = restore_postgres(&url, &found, force).await?;
            Ok(Restored { manifest: found.manifest, kept_aside: None, sessions_ended })
        }
        DatabaseKind::Sqlite => {
            let target = crate::db::sqlite_file(&url).ok_or_else(|| {
                Error::Tool("the configured SQLite database is in memory: nothing to restore into".into())
            })?;
            let kept_aside = restore_sqlite(&target, &found).await?;
            Ok(Restored { manifest: found.manifest, kept_aside, sessions_ended: 0 })
        }
    }
}

async fn restore_postgres(url: &str, found: &Verified, force: bool) -> Result<u64, Error> {
    // One connection, so the sessions counted below are all someone else's.
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.map_err(|e| {
        Error::Db(format!("cannot connect to database {}: {}", crate::config::mask_url(url), one_line(&e.to_string())))
    })?;
    let others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, format!("SELECT COUNT(*) AS n {others}")))
        .await?
        .ok_or_else(|| Error::Db("no answer from pg_stat_activity".into()))?;
    let busy: i64 = row.try_get("", "n")?;
    let mut ended = 0;
    if busy > 0 && !force {
        db.close().await.ok();
        return Err(Error::InUse(format!(
            "the database is in use by {busy} other session(s): stop every `berth serve` and `berth worker` first (or pass --force to end those sessions); nothing was restored"
        )));
    }
    if busy > 0 {
        let rows = db
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT pg_terminate_backend(pid) AS ended {others}"),
            ))
            .await?;
        ended = rows.len() as u64;
    }
    db.close().await.ok();

    let (mut cmd, target) = libpq_command("pg_restore", url)?;
    cmd.args([
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        "--dbname",
        target.as_str(),
    ])
    .arg(&found.data)
    .stdout(Stdio::null());
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::Tool(format!("cannot run pg_restore (Debian: postgresql-client): {e}")))?;
    if !out.status.success() {
        return Err(Error::Tool(format!(
            "pg_restore failed ({}), the database is as it was: {}",
            out.status,
            one_line(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    Ok(ended)
}

/// Replaces the SQLite file `target` with the backup's copy: copied next to it (and checked
/// again on the way), the old file and its `-wal`/`-shm` moved aside, then one atomic rename.
async fn restore_sqlite(target: &Path, found: &Verified) -> Result<Option<PathBuf>, Error> {
    if sqlite_in_use(target)? {
        return Err(Error::InUse(format!(
            "{} is open in another process (a running `berth serve` or `berth worker`): stop it first; nothing was restored",
            target.display()
        )));
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let with_suffix = |suffix: &str| {
        let mut name = target.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let staged = with_suffix(&format!(".restore-{stamp}"));
    let result = async {
        // Copy, hashing what was written: what is swapped in is what was verified.
        let mut from = tokio::fs::File::open(&found.data).await.map_err(io("cannot read", &found.data))?;
        let mut to = create_private(&staged).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf).await.map_err(io("cannot read", &found.data))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            to.write_all(&buf[..n]).await.map_err(io("cannot write", &staged))?;
        }
        to.sync_all().await.map_err(io("cannot write", &staged))?;
        if hex::encode(hasher.finalize()) != found.manifest.sha256 {
            return Err(Error::Corrupt { path: found.data.display().to_string(), what: "the copied file's SHA-256" });
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&staged).await;
        return Err(e);
    }

    let mut kept = None;
    if tokio::fs::try_exists(target).await.unwrap_or(false) {
        let aside = with_suffix(&format!(".before-restore-{stamp}"));
        tokio::fs::hard_link(target, &aside).await.map_err(io("cannot keep the old database as", &aside))?;
        for journal in ["-wal", "-shm"] {
            let from = with_suffix(journal);
            if tokio::fs::try_exists(&from).await.unwrap_or(false) {
                let mut to = aside.as_os_str().to_owned();
                to.push(journal);
                tokio::fs::rename(&from, PathBuf::from(to)).await.map_err(io("cannot move aside", &from))?;
            }
        }
        kept = Some(aside);
    }
    tokio::fs::rename(&staged, target).await.map_err(io("cannot put the restored database at", target))?;
    if let Some(dir) = target.parent() {
        sync_dir(dir);
    }
    Ok(kept)
}

/// Whether another process has the SQLite database open. Berth runs SQLite in WAL mode, where
/// every open connection holds a shared lock on byte 128 of the `-shm` file (SQLite's
/// "dead man switch"), released by the kernel when the process ends: asking whether a write
/// lock there would conflict tells, without changing anything.
#[cfg(unix)]
fn sqlite_in_use(target: &Path) -> Result<bool, Error> {
    use std::os::fd::AsRawFd;
    let mut shm = target.as_os_str().to_owned();
    shm.push("-shm");
    let shm = PathBuf::from(shm);
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(&shm) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("cannot check", &shm)(e)),
    };
    // SAFETY: `flock` is plain data; zeroed is a valid value, and every field used is set.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 128;
    lock.l_len = 1;
    // SAFETY: F_GETLK on an open descriptor with a valid `flock`; it only reads lock state.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    if rc == -1 {
        return Err(io("cannot check", &shm)(std::io::Error::last_os_error()));
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(not(unix))]
fn sqlite_in_use(_target: &Path) -> Result<bool, Error> {
    Ok(false)
}

/// Platform backups in `dir` (folders with a manifest this key signed), newest first.
/// Folders that are not ours are left alone and not listed.
pub async fn list(dir: &Path, keys: &Keys) -> Result<Vec<(PathBuf, Manifest)>, Error> {
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("cannot list", dir)(e)),
    };
    while let Some(entry) = entries.next_entry().await.map_err(io("cannot list", dir))? {
        let path = entry.path();
        let Ok(text) = tokio::fs::read(path.join(MANIFEST)).await else { continue };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&text) else { continue };
        if manifest.format == FORMAT && keys.verify(SIGNING_CONTEXT, &manifest.signed_text(), &manifest.signature) {
            out.push((path, manifest));
        }
    }
    out.sort_by_key(|(_, m)| std::cmp::Reverse(m.created_at));
    Ok(out)
}

/// Deletes the platform backups in `dir` that GFS retention (`policy`) does not keep, and
/// interrupted ones (`.partial`) a day old. Only folders whose manifest this key signed are
/// considered for retention; returns the folders deleted.
pub async fn prune(dir: &Path, keys: &Keys, policy: &Policy, now: DateTime<Utc>) -> Result<Vec<PathBuf>, Error> {
    let found = list(dir, keys).await?;
    let backups: Vec<backup_retention::Backup<PathBuf>> = found
        .iter()
        .map(|(path, m)| backup_retention::Backup { id: path.clone(), at: m.created_at, outcome: Outcome::Good })
        .collect();
    let decision = backup_retention::decide(policy, &backups, now);
    let mut deleted = decision.delete;
    for path in &deleted {
        tokio::fs::remove_dir_all(path).await.map_err(io("cannot delete old backup", path))?;
    }
    deleted.extend(remove_abandoned(dir).await?);
    Ok(deleted)
}

/// `berth-*.partial` folders untouched for a day: backups interrupted before they completed
/// (one still being written is touched as it grows, and none takes a day).
async fn remove_abandoned(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return Ok(removed) };
    while let Some(entry) = entries.next_entry().await.map_err(io("cannot list", dir))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("berth-") && name.ends_with(".partial")) {
            continue;
        }
        let path = entry.path();
        let age = entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a > std::time::Duration::from_secs(24 * 3600)) {
            tokio::fs::remove_dir_all(&path).await.map_err(io("cannot delete abandoned backup", &path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Creates `dir` and its missing parents, the created ones private (0700); an existing
/// directory (an operator's `--out`) keeps its permissions.
fn create_dirs(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io("cannot create", dir))
}

/// Creates `dir` (a backup's own folder) readable by Berth's user only.
fn private_dir(dir: &Path) -> Result<(), Error> {
    create_dirs(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io("cannot secure", dir))?;
    }
    Ok(())
}

fn set_private(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io("cannot secure", path))?;
    }
    Ok(())
}

async fn create_private(path: &Path) -> Result<tokio::fs::File, Error> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        options.mode(0o600);
    }
    options.open(path).await.map_err(io("cannot create", path))
}

async fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = create_private(path).await?;
    file.write_all(bytes).await.map_err(io("cannot write", path))?;
    file.sync_all().await.map_err(io("cannot write", path))
}

/// Makes a rename in `dir` durable; best effort (not every filesystem syncs directories).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tools_get_the_password_apart() {
        let (target, password) = libpq_target("postgres://berth:p%40ss@db:5432/berth?sslmode=require").expect("url");
        assert_eq!(target, "postgres://berth@db:5432/berth?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss"));
        let (target, password) = libpq_target("postgres://postgres@127.0.0.1:5/x").expect("url");
        assert_eq!(target, "postgres://postgres@127.0.0.1:5/x");
        assert_eq!(password, None);
    }

    #[test]
    fn a_changed_manifest_field_breaks_the_signature() {
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef");
        let mut m = Manifest {
            format: FORMAT.into(),
            created_at: Utc::now(),
            database: DatabaseKind::Sqlite,
            file: "berth.sqlite".into(),
            size: 10,
            sha256: "ab".into(),
            berth_version: "0.1.0".into(),
            schema: "m0011_backup_schedules".into(),
            signature: String::new(),
        };
        m.signature = keys.sign(SIGNING_CONTEXT, &m.signed_text());
        assert!(keys.verify(SIGNING_CONTEXT, &m.signed_text(), &m.signature));
        let mut changed = m.clone();
        changed.size = 11;
        assert!(!keys.verify(SIGNING_CONTEXT, &changed.signed_text(), &changed.signature));
        let other = Keys::derive(b"another key, also 32 characters!");
        assert!(!other.verify(SIGNING_CONTEXT, &m.signed_text(), &m.signature));
    }
}
