//! Opening the database, with failures a person can act on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::{mask_url, Config};

/// Connects to the configured database (creating the data dir for SQLite). The error is one
/// line naming the database without its password.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.server.effective_database_url();
    connect_url(&url, config).await
}

pub async fn connect_url(url: &str, config: &Config) -> anyhow::Result<DatabaseConnection> {
    let sqlite = url.starts_with("sqlite:");
    if sqlite && config.server.database_url.is_none() {
        std::fs::create_dir_all(&config.server.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", config.server.data_dir.display()))?;
    }
    if let Some(path) = sqlite_file(url) {
        private_database_file(&path, url.contains("mode=rwc"))
            .map_err(|e| anyhow::anyhow!("cannot secure database file {}: {e}", path.display()))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(10)).sqlx_logging(false);
    // No ping before each checkout: it doubled the round trips of every statement run outside a
    // transaction (an API read made eight instead of four). A connection the server dropped
    // fails its next statement instead, which the pool then closes and replaces; the request
    // that met it gets a 503/500 like any database failure.
    options.test_before_acquire(false);
    if sqlite {
        // One connection: SQLite has one writer, and a single connection rules out
        // "database is locked" between two of our own transactions.
        options.max_connections(1).min_connections(1);
        // Write-ahead log: a commit appends to the log instead of rewriting pages through a
        // rollback journal. `synchronous = FULL` keeps what docs/queue.md promises — a commit
        // (a signup, an enqueue) is on disk before it is acknowledged, even across a power
        // loss; NORMAL would be faster but could lose the last commits to one. The busy
        // timeout covers another process (`berth admin create`) holding the write lock briefly.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
        });
    } else {
        options.max_connections(20).min_connections(1);
    }
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to database {}: {}", mask_url(url), one_line(&e.to_string())))
}

/// The file of a SQLite URL (`sqlite://path?mode=rwc`, `sqlite:path`); `None` in memory.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// The database holds password hashes, token hashes and every customer's data: it and its
/// journal files are readable by Berth's user only (0600). A missing file is created that way
/// (when the URL may create it), so SQLite, which gives its `-journal`, `-wal` and `-shm` files
/// the database file's mode, keeps them private too; an existing file that others can read is
/// tightened, with a line in the log.
#[cfg(unix)]
fn private_database_file(path: &Path, create: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if create {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(path = %file.display(), old_mode = format!("{:o}", mode & 0o777), "Made the database file private (0600)");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_database_file(_path: &Path, _create: bool) -> std::io::Result<()> {
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://./data/berth.db?mode=rwc"), Some(PathBuf::from("./data/berth.db")));
        assert_eq!(sqlite_file("sqlite:/srv/berth.db"), Some(PathBuf::from("/srv/berth.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://db/berth"), None);
    }
}
