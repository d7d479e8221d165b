//! Site backups end to end: real Docker and nginx (the runtime test app), the real `backup.site`
//! job, repositories on a local directory and on a real S3 server (moto), read back by Berth's
//! engine and by the stock `restic` CLI (scripts/test.sh installs both). Retention, the
//! integrity check, alerts on failed backups and a worker killed mid-backup too.

mod alerts;
mod api;
mod check;
mod drill;
mod kill;
mod prune;
mod s3;
mod schedule;
mod site;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_backup::Backups;
use berth_core::crypto::Keys;
use rand::RngCore;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::support::runtime::engine;
use crate::support::{Client, TestApp};

/// The app's backup repositories, as the workers open them (same settings, same secret key).
pub fn backups(app: &TestApp) -> Backups {
    let secret = app.config.server.secret_key.as_ref().expect("tests set BERTH_SECRET_KEY");
    let keys = Keys::derive(secret.expose().as_bytes());
    Backups::new(app.config.backup.clone(), std::sync::Arc::new(keys))
}

/// The host directory of a site's data volume (Berth's tests run as root on the Docker host).
pub async fn volume_dir(app: &TestApp, site_id: &str) -> PathBuf {
    let id: Uuid = site_id.parse().expect("uuid");
    let volume = engine().client().inspect_volume(&app.scope().names.volume(id)).await.expect("inspect volume");
    PathBuf::from(volume.mountpoint)
}

/// Writes `count` files of `size` random bytes under `dir/<sub>/`, spread over a few directories.
pub fn write_files(dir: &Path, sub: &str, count: usize, size: usize) {
    let mut rng = rand::thread_rng();
    for i in 0..count {
        let path = dir.join(sub).join(format!("d{}", i % 7)).join(format!("file-{i}.bin"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        std::fs::write(&path, data).expect("write");
    }
}

/// Asks for a backup of the site as `client`, checks the 202, and waits for the job to finish:
/// the backup row as the API lists it then.
pub async fn back_up(client: &Client, site_id: &str) -> Value {
    let res = client.post(&format!("/api/v1/sites/{site_id}/backups"), &serde_json::json!({})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["backup"]["status"], "queued", "{}", res.text);
    assert_eq!(res.body["backup"]["kind"], "manual", "{}", res.text);
    assert!(res.body["job_id"].is_string(), "202 names the job: {}", res.text);
    let backup_id = res.body["backup"]["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = client.get(&format!("/api/v1/sites/{site_id}/backups")).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let row = list.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|b| b["id"] == backup_id.as_str()).cloned())
            .unwrap_or_else(|| panic!("backup {backup_id} is not listed: {}", list.text));
        if row["status"] == "succeeded" || row["status"] == "failed" {
            return row;
        }
        assert!(Instant::now() < deadline, "backup still {} after 120 s: {row}", row["status"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the restic CLI on a customer's repository, with the password Berth derives for it:
/// (success, stdout, stderr).
pub fn restic(
    backups: &Backups,
    customer: Uuid,
    s3: Option<&crate::support::services::S3Server>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("restic");
    cmd.args(["--no-cache", "-r", &backups.restic_url(customer)])
        .args(args)
        .env("RESTIC_PASSWORD", backups.password(customer))
        .env_remove("RESTIC_REPOSITORY")
        .env_remove("RESTIC_PASSWORD_FILE");
    if let Some(s3) = s3 {
        cmd.env("AWS_ACCESS_KEY_ID", &s3.access_key_id).env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key);
    }
    let out = cmd.output().expect("restic is installed by scripts/test.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The snapshot ids restic lists for a repository.
pub fn restic_snapshot_ids(
    backups: &Backups,
    customer: Uuid,
    s3: Option<&crate::support::services::S3Server>,
) -> Vec<String> {
    let (ok, out, err) = restic(backups, customer, s3, &["snapshots", "--json"]);
    assert!(ok, "restic snapshots failed: {err}");
    let list: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("restic snapshots --json: {e}: {out}"));
    list.as_array().expect("array").iter().filter_map(|s| s["id"].as_str().map(str::to_owned)).collect()
}

/// Runs `job` through the app's workers and waits (up to two minutes) until it finished: the
/// job's row then (`done`, or `dead` when it failed for good).
pub async fn run_job<J: berth_core::jobs::Job>(app: &TestApp, job: &J) -> berth_core::entities::jobs::Model {
    use berth_core::entities::jobs::{self, JobState};
    use sea_orm::EntityTrait;
    let id = berth_core::jobs::enqueue(&app.db, job).await.expect("enqueue").expect("not a duplicate");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let row = jobs::Entity::find_by_id(id).one(&app.db).await.expect("query").expect("job exists");
        if matches!(row.state, JobState::Done | JobState::Dead) {
            return row;
        }
        assert!(Instant::now() < deadline, "{} still {:?} after 120 s: {:?}", J::NAME, row.state, row.last_error);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The biggest file under `dir` (a repository's biggest pack, under `data/`).
pub fn biggest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("ls") {
            let path = entry.expect("entry").path();
            let meta = std::fs::metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path);
            } else if best.as_ref().is_none_or(|(size, _)| meta.len() > *size) {
                best = Some((meta.len(), path));
            }
        }
    }
    best.expect("the repository has pack files").1
}

/// Flips one byte in the middle of `file`.
pub fn flip_byte(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(file, &bytes).expect("write");
}
