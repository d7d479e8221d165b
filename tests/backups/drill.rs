//! Restore drills end to end: a real backup in a real repository restored by the real
//! `backup.drill` job into a scratch volume and a scratch container on the real Docker engine,
//! with the reconciler running beside it; the result read through the API and the console page.

use std::time::{Duration, Instant};

use berth_backup::Manifest;
use berth_core::entities::backup_drills;
use berth_core::types::DrillStatus;
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{back_up, backups, biggest_file, volume_dir, write_files};
use crate::support::runtime::engine;
use crate::support::{Client, TestApp};
use berth_runtime::engine::Engine;

/// Asks for a drill of one site as `admin` (202 with its job) and waits until it is recorded
/// as finished: the drill as the API lists it then.
async fn drill(admin: &Client, site_id: &str) -> Value {
    let res = admin.post("/api/v1/backup-drills", &json!({"site_id": site_id})).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert!(res.body["job_id"].is_string(), "202 names the job: {}", res.text);
    let job = res.str("job_id");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let state = admin.get(&format!("/api/v1/jobs/{job}")).await;
        let done = matches!(state.body["state"].as_str(), Some("done" | "dead"));
        if done {
            assert_eq!(state.body["state"], "done", "the drill job itself succeeds: {}", state.text);
            let list = admin.get(&format!("/api/v1/backup-drills?site_id={site_id}")).await;
            assert_eq!(list.status, StatusCode::OK, "{}", list.text);
            let newest = list.body["items"][0].clone();
            assert_ne!(newest["status"], "running", "{newest}");
            return newest;
        }
        assert!(Instant::now() < deadline, "drill job still {} after 180 s", state.body["state"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The scratch containers and volumes of drills in this test's Docker scope.
async fn scratch_objects(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let filter = app.scope().names.drill_filter();
    let containers = engine().containers(&filter).await.expect("containers").into_iter().map(|c| c.name).collect();
    let volumes = engine().volumes(&filter).await.expect("volumes");
    (containers, volumes)
}

fn started(c: &bollard::models::ContainerInspectResponse) -> Option<String> {
    c.state.as_ref().and_then(|s| s.started_at.clone())
}

#[tokio::test]
async fn a_drill_restores_the_newest_backup_into_a_scratch_container_and_passes() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "drills@example.com", "business").await;
    let site = app.running_site(&admin, &customer, "shop", "shop.drill.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let container = app.scope().names.container(id.parse().expect("uuid"));
    let data = volume_dir(&app, &id).await;
    write_files(&data, "uploads", 40, 20 * 1024);
    std::fs::write(data.join("index.html"), "<h1>shop</h1>\n").expect("index");
    std::os::unix::fs::symlink("index.html", data.join("home.html")).expect("symlink");
    let first = back_up(&admin, &id).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    // The newest backup is the one drilled: one more file after the first.
    std::fs::write(data.join("later.txt"), "written after the first backup\n").expect("write");
    let newest = back_up(&admin, &id).await;
    assert_eq!(newest["status"], "succeeded", "{newest}");
    let expected = Manifest::of_dir(&data).expect("manifest of the volume");
    let before = app.inspect(&container).await;

    // A dead drill's leftovers: a scratch volume of a drill that is not running, and an expired
    // scratch container. The next drill and the reconciler's orphan pass remove them.
    let names = &app.scope().names;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let dead = Uuid::now_v7();
    engine().ensure_volume(&names.drill(dead), names.drill_labels(dead, customer_id, 0)).await.expect("volume");
    let expired = Uuid::now_v7();
    let body = bollard::models::ContainerCreateBody {
        image: Some(berth_runtime::images::SITE_STATIC_TAG.into()),
        labels: Some(names.drill_labels(expired, customer_id, 0)),
        ..Default::default()
    };
    engine().create(&names.drill(expired), body).await.expect("create a leftover container");

    let result = drill(&admin, &id).await;
    assert_eq!(result["status"], "passed", "{result}");
    assert_eq!(result["backup_id"], newest["id"], "the newest good backup: {result}");
    assert_eq!(result["site_id"], id.as_str());
    assert_eq!(result["customer_id"], customer.as_str());
    assert_eq!(result["files"], newest["file_count"], "{result}");
    assert_eq!(result["files"], expected.file_count(), "{result}");
    assert_eq!(result["bytes"], expected.total_bytes(), "{result}");
    assert_eq!(result["mismatches"], 0, "{result}");
    assert!(result["error"].is_null(), "{result}");
    assert!(result["finished_at"].is_string(), "{result}");

    // Nothing of the drill is left, nor of the dead drill before it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (containers, volumes) = scratch_objects(&app).await;
        if containers.is_empty() && volumes.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "scratch objects left: {containers:?} {volumes:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The live site was never touched: same container, never restarted, still serving.
    let after = app.inspect(&container).await;
    assert_eq!(after.id, before.id, "same container");
    assert_eq!(started(&after), started(&before), "the site's container was never restarted");
    assert_eq!(Manifest::of_dir(&data).expect("manifest"), expected, "the site's data is as it was");
    app.wait_ingress("shop.drill.test", 200).await;

    // The console lists it; "Run a drill now" queues a drill of a sample, which passes too.
    let page = admin.get("/admin/backups/drills").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(">shop<"), "the site is named: {}", page.text);
    assert!(page.text.contains("passed"), "{}", page.text);
    assert!(page.text.contains("Run a drill now"), "{}", page.text);
    let csrf = admin.csrf.clone().expect("the API sign-in gives the session's CSRF token");
    let form = format!("csrf_token={csrf}").into_bytes();
    let res =
        admin.raw(Method::POST, "/admin/backups/drills/run", Some("application/x-www-form-urlencoded"), form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    let without =
        admin.raw(Method::POST, "/admin/backups/drills/run", Some("application/x-www-form-urlencoded"), vec![]).await;
    assert_ne!(without.status, StatusCode::SEE_OTHER, "no drill without the form's CSRF token");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = admin.get("/api/v1/backup-drills?status=passed").await;
        if list.body["items"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the sampled drill did not pass: {}", list.text);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.wait_for_idle_queue().await;
    app.finish().await;
}

#[tokio::test]
async fn a_drill_of_a_backup_that_does_not_restore_as_recorded_fails_and_leaves_nothing() {
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "drills-bad@example.com", "business").await;
    let customer_id: Uuid = customer.parse().expect("uuid");
    let site = app.running_site(&admin, &customer, "shop", "bad.drill.test").await;
    let id = site["id"].as_str().expect("id").to_owned();
    let container = app.scope().names.container(id.parse().expect("uuid"));
    let data = volume_dir(&app, &id).await;
    write_files(&data, "uploads", 30, 64 * 1024);
    let backup = back_up(&admin, &id).await;
    assert_eq!(backup["status"], "succeeded", "{backup}");
    let backup_id = backup["id"].as_str().expect("id").to_owned();
    let recorded = backup["manifest_sha256"].as_str().expect("digest").to_owned();
    let before = app.inspect(&container).await;

    // The backup's recorded manifest digest no longer matches what its snapshot holds.
    let set_digest = |digest: String| {
        let db = app.db.clone();
        let backup_id = backup_id.clone();
        async move {
            db.execute(sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE backups SET manifest_sha256 = $1 WHERE id = $2",
                [digest.into(), backup_id.parse::<Uuid>().expect("uuid").into()],
            ))
            .await
            .expect("update the backup");
        }
    };
    set_digest("0".repeat(64)).await;
    let result = drill(&admin, &id).await;
    assert_eq!(result["status"], "failed", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(error.contains("is not the one backup") && error.contains(&"0".repeat(64)), "the reason: {result}");
    assert_eq!(result["files"], backup["file_count"], "every file restored: {result}");
    assert_eq!(result["mismatches"], 0, "the files are the snapshot's; the record is what differs: {result}");
    assert_eq!(scratch_objects(&app).await, (vec![], vec![]), "scratch objects removed after a failure");

    // A damaged repository: one byte flipped in the biggest pack. The restore refuses.
    set_digest(recorded).await;
    let repo = backups(&app).local_path(customer_id).expect("local repository");
    let pack = biggest_file(&repo.join("data"));
    let mut bytes = std::fs::read(&pack).expect("read pack");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&pack, &bytes).expect("write pack");
    let result = drill(&admin, &id).await;
    assert_eq!(result["status"], "failed", "{result}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not restore") && error.contains("damaged"), "the reason: {result}");
    assert!(result["files"].is_null(), "{result}");
    assert_eq!(scratch_objects(&app).await, (vec![], vec![]), "scratch objects removed after a failure");
    let failed = admin.get("/api/v1/backup-drills?status=failed").await;
    assert_eq!(failed.body["items"].as_array().map_or(0, Vec::len), 2, "failures are queryable: {}", failed.text);
    let failing = berth_core::store::backup_drills::failing_sites(&app.db).await.expect("query");
    assert_eq!(
        failing.into_iter().collect::<Vec<_>>(),
        [id.parse::<Uuid>().expect("uuid")],
        "what the backup_check alert reads"
    );

    let after = app.inspect(&container).await;
    assert_eq!((after.id.clone(), started(&after)), (before.id.clone(), started(&before)), "the site untouched");
    app.wait_ingress("bad.drill.test", 200).await;
    app.finish().await;
}

#[tokio::test]
async fn customers_cannot_start_drills_and_see_only_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "drill-a@example.com", "starter").await;
    let b = app.customer(&admin, "drill-b@example.com", "starter").await;
    let user_a = app.customer_user(&admin, &a, "user-a@example.com").await;
    let user_b = app.customer_user(&admin, &b, "user-b@example.com").await;
    // One recorded drill of a site of each customer.
    for customer in [&a, &b] {
        backup_drills::ActiveModel {
            id: Set(Uuid::now_v7()),
            site_id: Set(Uuid::now_v7()),
            customer_id: Set(customer.parse().expect("uuid")),
            backup_id: Set(Uuid::now_v7()),
            status: Set(DrillStatus::Passed),
            files: Set(Some(3)),
            bytes: Set(Some(30)),
            mismatches: Set(Some(0)),
            error: Set(None),
            started_at: Set(chrono::Utc::now()),
            finished_at: Set(Some(chrono::Utc::now())),
        }
        .insert(&app.db)
        .await
        .expect("insert a drill");
    }
    let all = admin.get("/api/v1/backup-drills").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["items"].as_array().map_or(0, Vec::len), 2, "{}", all.text);
    for (user, own) in [(&user_a, &a), (&user_b, &b)] {
        let list = user.get("/api/v1/backup-drills").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.text);
        let items = list.body["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "only their own: {}", list.text);
        assert_eq!(items[0]["customer_id"], own.as_str(), "{}", list.text);
        let res = user.post("/api/v1/backup-drills", &json!({})).await;
        res.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    }
    // Another customer's drills are not found by naming their site either.
    let theirs = all.body["items"].as_array().expect("items").iter().find(|d| d["customer_id"] == b.as_str()).cloned();
    let site_b = theirs.expect("b's drill")["site_id"].as_str().expect("site").to_owned();
    let list = user_a.get(&format!("/api/v1/backup-drills?site_id={site_b}")).await;
    assert_eq!(list.body["items"], json!([]), "{}", list.text);
    // Bad bodies are refused before anything is queued.
    let res = admin.post("/api/v1/backup-drills", &json!({"site": "x"})).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text);
    let res = admin.raw(Method::POST, "/api/v1/backup-drills", Some("text/plain"), b"site".to_vec()).await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", res.text);
    // The console page is the administrators': a customer is sent to the portal.
    let page = user_a.get("/admin/backups/drills").await;
    assert_ne!(page.status, StatusCode::OK, "{}", page.text);
    assert!(!page.text.contains("Restore drills"), "{}", page.text);
    app.stop().await;
}
