//! Opening the database, with failures a person can act on.

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
    let mut options = ConnectOptions::new(url.to_owned());
    options.connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(10)).sqlx_logging(false);
    if sqlite {
        // One connection: SQLite has one writer, and a single connection rules out
        // "database is locked" between two of our own transactions.
        options.max_connections(1).min_connections(1);
    } else {
        options.max_connections(20).min_connections(1);
    }
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to database {}: {}", mask_url(url), one_line(&e.to_string())))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
