//! Platform backup and restore of Berth's own database, end to end with the real `berth`
//! binary: `berth backup-platform` → change and delete data → `berth restore-platform` → the
//! data is as it was; a flipped byte, a foreign key or a database in use → refused, untouched.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use berth_core::jobs::platform_backup::BackupPlatform;
use berth_core::platform_backup;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::cli::berth;
use crate::support::{TempDatabase, TestApp};

const KEY: &str = "platform-backup-test-key-0123456789abcdef";

/// `berth` in `dir` with `vars`.
fn run(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    berth(dir).envs(vars.iter().copied()).args(args).stdin(Stdio::null()).output().expect("run berth")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "berth failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one line a refused command prints; the exit code is non-zero.
fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "expected a refusal: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn add_admin(dir: &Path, vars: &[(&str, &str)], email: &str) {
    let out = berth(dir)
        .envs(vars.iter().copied())
        .args(["admin", "create", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"Admin-Password-1234\n")?;
            child.wait_with_output()
        })
        .expect("run berth admin create");
    ok(&out);
}

/// The backup folder named on `backup-platform`'s line.
fn written_dir(stdout: &str) -> PathBuf {
    let rest = stdout.trim().strip_prefix("Platform backup written to ").unwrap_or_else(|| panic!("{stdout}"));
    PathBuf::from(rest.split(" (").next().expect("path"))
}

async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .expect("query")
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.expect("statement");
}

fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(file, bytes).expect("write");
}

fn sha256(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).expect("read")))
}

#[tokio::test]
async fn sqlite_backup_then_restore_brings_the_data_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = [("BERTH_SECRET_KEY", KEY)];
    ok(&run(dir.path(), &vars, &["migrate"]));
    add_admin(dir.path(), &vars, "kept@example.com");
    let db_file = dir.path().join("data/berth.db");
    let url = format!("sqlite://{}", db_file.display());

    let out = ok(&run(dir.path(), &vars, &["backup-platform"]));
    let backup = written_dir(&out);
    let platform_dir = std::fs::canonicalize(dir.path().join("data/backups/platform")).expect("platform dir");
    assert!(backup.starts_with(&platform_dir), "{out}");
    assert!(out.contains("SQLite database"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["database"], "sqlite");
    assert_eq!(manifest["schema"], berth_migrations::names().last().expect("a migration").as_str());
    assert_eq!(manifest["sha256"], sha256(&backup.join("berth.sqlite")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&backup), 0o700);
        assert_eq!(mode(&backup.join("berth.sqlite")), 0o600);
        assert_eq!(mode(&backup.join("manifest.json")), 0o600);
    }

    // Change and delete data after the backup.
    add_admin(dir.path(), &vars, "later@example.com");
    let db = Database::connect(&url).await.expect("open");
    exec(&db, "UPDATE plans SET name = 'Renamed' WHERE id = 'starter'").await;
    exec(&db, "DELETE FROM users WHERE email = 'kept@example.com'").await;

    // While something has the database open, the restore is refused, even with --force.
    let path = backup.display().to_string();
    let err = refused(&run(dir.path(), &vars, &["restore-platform", &path, "--force"]));
    assert!(err.contains("is open in another process"), "{err}");
    db.close().await.expect("close");

    // A flipped byte: refused, the database untouched.
    let data = backup.join("berth.sqlite");
    let good = std::fs::read(&data).expect("read");
    flip_a_byte(&data);
    let before = sha256(&db_file);
    let err = refused(&run(dir.path(), &vars, &["restore-platform", &path]));
    assert!(err.contains("is corrupt"), "{err}");
    assert_eq!(sha256(&db_file), before, "the database file is untouched");
    std::fs::write(&data, &good).expect("put the good file back");

    // Another installation's key: refused as foreign.
    let other = [("BERTH_SECRET_KEY", "another-installation-key-0123456789abcdef")];
    let err = refused(&run(dir.path(), &other, &["restore-platform", &path]));
    assert!(err.contains("was not made by this Berth"), "{err}");

    // Not a backup at all.
    let err = refused(&run(dir.path(), &vars, &["restore-platform", &dir.path().join("data").display().to_string()]));
    assert!(err.contains("is not a Berth platform backup"), "{err}");

    // The real thing, through the manifest's path this time.
    let out = ok(&run(dir.path(), &vars, &["restore-platform", &backup.join("manifest.json").display().to_string()]));
    assert!(out.contains("Restored the SQLite backup"), "{out}");
    assert!(out.contains("before-restore-"), "the replaced file is kept aside: {out}");
    let db = Database::connect(&url).await.expect("open");
    let mut admins = strings(&db, "SELECT email FROM users ORDER BY email").await;
    admins.retain(|e| e.ends_with("@example.com"));
    assert_eq!(admins, ["kept@example.com"]);
    assert_eq!(strings(&db, "SELECT name FROM plans WHERE id = 'starter'").await, ["Starter"]);
    db.close().await.expect("close");
    let kept_aside = std::fs::read_dir(dir.path().join("data"))
        .expect("list")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("berth.db.before-restore-"));
    assert!(kept_aside);

    // Berth starts on the restored database.
    ok(&run(dir.path(), &vars, &["migrate"]));
}

#[tokio::test]
async fn postgres_backup_then_restore_brings_the_data_back() {
    let temp = TempDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("offsite");
    let vars = [("BERTH_SECRET_KEY", KEY), ("BERTH_DATABASE_URL", temp.url.as_str())];
    ok(&run(dir.path(), &vars, &["migrate"]));
    add_admin(dir.path(), &vars, "kept@example.com");

    let out = ok(&run(dir.path(), &vars, &["backup-platform", "--out", &out_dir.display().to_string()]));
    let backup = written_dir(&out);
    assert!(backup.starts_with(std::fs::canonicalize(&out_dir).expect("out dir")), "{out}");
    assert!(out.contains("PostgreSQL database"), "{out}");
    let data = backup.join("berth.pgdump");
    assert_eq!(&std::fs::read(&data).expect("dump")[..5], b"PGDMP", "pg_dump's custom format");

    add_admin(dir.path(), &vars, "later@example.com");
    let db = Database::connect(&temp.url).await.expect("connect");
    exec(&db, "UPDATE plans SET name = 'Renamed' WHERE id = 'starter'").await;
    exec(&db, "DELETE FROM users WHERE email = 'kept@example.com'").await;

    // Another session on the database: refused without --force.
    let path = backup.display().to_string();
    let err = refused(&run(dir.path(), &vars, &["restore-platform", &path]));
    assert!(err.contains("the database is in use by"), "{err}");

    // A flipped byte: refused, nothing changed.
    let good = std::fs::read(&data).expect("read");
    flip_a_byte(&data);
    let err = refused(&run(dir.path(), &vars, &["restore-platform", &path, "--force"]));
    assert!(err.contains("is corrupt"), "{err}");
    assert_eq!(strings(&db, "SELECT name FROM plans WHERE id = 'starter'").await, ["Renamed"], "untouched");
    std::fs::write(&data, &good).expect("put the good file back");

    // A PostgreSQL backup does not go into SQLite.
    let sqlite = [("BERTH_SECRET_KEY", KEY)];
    let err = refused(&run(dir.path(), &sqlite, &["restore-platform", &path]));
    assert!(err.contains("is a PostgreSQL backup but the configured database is SQLite"), "{err}");

    // --force ends the other session (ours) and restores.
    let out = ok(&run(dir.path(), &vars, &["restore-platform", &path, "--force"]));
    assert!(out.contains("Restored the PostgreSQL backup"), "{out}");
    assert!(out.contains("other session(s) of the database first"), "{out}");
    drop(db);
    let db = Database::connect(&temp.url).await.expect("connect");
    let mut admins = strings(&db, "SELECT email FROM users ORDER BY email").await;
    admins.retain(|e| e.ends_with("@example.com"));
    assert_eq!(admins, ["kept@example.com"]);
    assert_eq!(strings(&db, "SELECT name FROM plans WHERE id = 'starter'").await, ["Starter"]);
    db.close().await.expect("close");
    ok(&run(dir.path(), &vars, &["migrate"]));
}

/// The `backup.platform` job (what the daily schedule enqueues) writes a verified backup into
/// `BERTH_BACKUP_DIR/platform` and prunes what GFS retention no longer keeps.
#[tokio::test]
async fn the_scheduled_job_backs_up_and_prunes() {
    let backups = tempfile::tempdir().expect("temp dir");
    let dir = backups.path().display().to_string();
    let app = TestApp::spawn_with_workers(&[("BERTH_BACKUP_DIR", &dir)]).await;
    let keys = berth_core::crypto::Keys::derive(
        app.config.server.secret_key.as_ref().expect("test apps have a key").expose().as_bytes(),
    );
    let platform = app.config.backup.platform_dir();
    // Two earlier backups of this same hour: retention keeps one copy per period.
    let first = platform_backup::backup(&app.db, &app.config, &keys, &platform).await.expect("backup");
    let second = platform_backup::backup(&app.db, &app.config, &keys, &platform).await.expect("backup");
    // A folder that is not Berth's is never touched.
    std::fs::create_dir_all(platform.join("notes")).expect("mkdir");
    // An interrupted backup: a fresh one may still be growing, one a day old is abandoned.
    let abandoned = platform.join("berth-20261101T024500.000000Z.partial");
    let growing = platform.join("berth-20261202T024500.000000Z.partial");
    for dir in [&abandoned, &growing] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    std::fs::File::open(&abandoned).and_then(|d| d.set_modified(two_days_ago)).expect("age the folder");

    berth_core::jobs::enqueue(&app.db, &BackupPlatform {}).await.expect("enqueue");
    app.wait_for_idle_queue().await;

    let listed = platform_backup::list(&platform, &keys).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (newest, manifest) = &listed[0];
    assert!(manifest.created_at > second.manifest.created_at);
    platform_backup::verify(newest, &keys).await.expect("the job's backup verifies");
    assert!(!first.dir.exists() && !second.dir.exists(), "older copies of the same hour were pruned");
    assert!(platform.join("notes").exists());
    assert!(!abandoned.exists(), "a day-old interrupted backup is removed");
    assert!(growing.exists(), "one that may still be written is not");
    let job = strings(&app.db, "SELECT state FROM jobs WHERE kind = 'backup.platform'").await;
    assert_eq!(job, ["done"]);
    app.stop().await;
}
