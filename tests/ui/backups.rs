//! Backups in the browser (web/src/site_backups.rs, web/src/admin/backups.rs), with a real
//! Docker engine, nginx, backup job and repository: "Back up now" until the list shows the
//! backup succeeded and verified, its download is a tar of the site's files, "Restore…" leads to
//! a confirmation naming the site and only its button restores, the restore's progress page
//! follows the flow until the site serves the backed-up file again, and the overview lists the
//! site's last good backup. In the portal the owner does the same, and another customer finds
//! none of it.
//!
//! Each scenario runs once (the console without JavaScript, the portal with it): a restore
//! replaces a real container, which is too slow to run twice on a shared machine.

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::{Browser, Js};
use crate::backups::volume_dir;
use crate::support::{Client, TestApp};

/// Long enough for a backup or a restore (a health-checked replacement container) on a busy
/// machine.
const SLOW: Duration = Duration::from_secs(240);

/// Reloads `path` until the element `css` shows `needle` (the page also reloads itself while
/// something runs; reloading here keeps the test independent of that interval).
async fn wait_on_page(b: &Browser, path: &str, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + SLOW;
    loop {
        b.open(path).await;
        // The page may reload itself meanwhile: a missing element is another try, not a failure.
        let text = match b.client.find(fantoccini::Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{path} never showed {needle:?} in {css}; it shows:\n{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The `href` of the first element matching `css`.
async fn href_of(b: &Browser, css: &str) -> String {
    let el = b.client.find(fantoccini::Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"));
    el.attr("href").await.expect("attribute").unwrap_or_else(|| panic!("{css} has no href"))
}

/// Downloads `path` with `client`'s session: (status, content type, disposition, body).
async fn fetch(client: &Client, path: &str) -> (StatusCode, String, String, Vec<u8>) {
    let res = client.http.get(format!("{}{path}", client.base)).send().await.expect("download");
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (status, content_type, disposition) = (res.status(), header("content-type"), header("content-disposition"));
    (status, content_type, disposition, res.bytes().await.expect("body").to_vec())
}

/// The content of `name` in a tar archive.
fn file_in_tar(tar_bytes: &[u8], name: &str) -> Option<String> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("path").to_string_lossy().trim_start_matches("./").to_owned();
        if path == name {
            let mut content = String::new();
            entry.read_to_string(&mut content).expect("read");
            return Some(content);
        }
    }
    None
}

/// Restore runs of any site, as the admin API lists them.
async fn restore_runs(admin: &Client) -> usize {
    let res = admin.get("/api/v1/flows?kind=site.restore").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["items"].as_array().map_or(0, Vec::len)
}

/// A backup row as the backup job leaves one: `succeeded` (verified, with its sizes) when
/// `error` is `None`, otherwise `failed` with that error.
async fn backup_row(
    db: &sea_orm::DatabaseConnection,
    site_id: &str,
    customer_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    sizes: (i64, i64),
    error: Option<&str>,
) -> uuid::Uuid {
    use berth_core::entities::backups;
    use berth_core::types::{BackupKind, BackupStatus};
    use sea_orm::{ActiveModelTrait, Set};
    let id = uuid::Uuid::now_v7();
    let good = error.is_none();
    backups::ActiveModel {
        id: Set(id),
        site_id: Set(site_id.parse().expect("uuid")),
        customer_id: Set(customer_id.parse().expect("uuid")),
        kind: Set(BackupKind::Hourly),
        status: Set(if good { BackupStatus::Succeeded } else { BackupStatus::Failed }),
        snapshot_id: Set(good.then(|| "ab".repeat(32))),
        size_bytes: Set(good.then_some(sizes.0)),
        added_bytes: Set(good.then_some(sizes.1)),
        file_count: Set(good.then_some(3)),
        manifest_sha256: Set(good.then(|| "cd".repeat(32))),
        verified: Set(good),
        target: Set("local".into()),
        error: Set(error.map(str::to_owned)),
        job_id: Set(None),
        started_at: Set(Some(at)),
        finished_at: Set(Some(at)),
        created_at: Set(at),
    }
    .insert(db)
    .await
    .expect("insert a backup row");
    id
}

async fn scroll_to(b: &Browser, id: &str) {
    b.client.execute(&format!("document.getElementById('{id}').scrollIntoView()"), vec![]).await.expect("scroll");
}

#[tokio::test]
async fn the_console_backs_up_downloads_and_restores_a_site() {
    const HOST: &str = "shop.ui-backups.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "backups@ui.example", "business").await;
    let site = app.running_site(&admin, &customer, "shop", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    let data = volume_dir(&app, &id).await;
    std::fs::write(data.join("index.html"), "<h1>the backed-up page</h1>\n").expect("write");
    assert!(app.wait_ingress(HOST, 200).await.contains("the backed-up page"));

    let mut b = Browser::start(&app, "backups-admin", Js::Off).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    let page = format!("/admin/sites/{id}");
    b.open(&page).await;
    b.wait_for_text("No backups yet.").await;
    b.press("Back up now").await;
    b.wait_for_text("Backup queued.").await;
    let section = b.text_of("#backups").await;
    if section.contains("queued") || section.contains("running") {
        assert!(b.exists("meta[http-equiv='refresh']").await, "the page reloads itself while a backup runs");
    }
    let section = wait_on_page(&b, &page, "#backups", "succeeded").await;
    assert!(section.contains("manual") && section.contains("yes"), "verified: {section}");
    assert!(section.contains(" B") || section.contains("KiB"), "the size in human units: {section}");
    scroll_to(&b, "backups").await;
    b.snap("site-backups").await;

    // Download: the same tar as the API's, through the console's session.
    let download = href_of(&b, "#backups a[href$='/download']").await;
    let (status, content_type, disposition, body) = fetch(&admin, &download).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/x-tar");
    assert!(
        disposition.starts_with("attachment; filename=\"site-") && disposition.ends_with(".tar\""),
        "{disposition}"
    );
    assert_eq!(file_in_tar(&body, "index.html").as_deref(), Some("<h1>the backed-up page</h1>\n"));

    // The site's file changes; "Restore…" asks first, naming the site and what happens.
    std::fs::write(data.join("index.html"), "<h1>changed since</h1>\n").expect("write");
    b.follow_link("Restore…").await;
    b.wait_for_text("The current files of shop will be replaced").await;
    let text = b.body_text().await;
    assert!(text.contains("Restore the site shop from its backup of"), "{text}");
    assert!(text.contains(HOST), "the domain is named: {text}");
    assert!(text.contains("pre-restore backup is taken first") && text.contains("kept"), "{text}");
    b.snap("restore-confirm").await;
    assert_eq!(restore_runs(&admin).await, 0, "the confirmation page restores nothing");
    b.press("Restore this backup").await;
    b.wait_for_text("Restore started.").await;
    let progress = b.path().await;
    assert!(progress.starts_with(&format!("/admin/sites/{id}/restores/")), "{progress}");
    let shown = wait_on_page(&b, &progress, "main", "Restored: shop now serves").await;
    for step in ["verify", "pre_restore", "fill", "switch", "keep_old"] {
        assert!(shown.contains(step), "step {step} listed: {shown}");
    }
    b.snap("restore-progress").await;
    app.wait_ingress_settled(HOST, 200).await;
    let served = app.wait_ingress(HOST, 200).await;
    assert!(served.contains("the backed-up page"), "the restored file is served: {served}");

    // The site page now lists the pre-restore backup and the volume kept aside.
    b.open(&page).await;
    b.wait_for_text("Volumes the site no longer uses").await;
    let section = b.text_of("#backups").await;
    assert!(section.contains("before a restore") && section.contains("Restores"), "{section}");
    scroll_to(&b, "backups").await;
    b.snap("site-backups-after-restore").await;

    // The volume kept aside is discarded only after its confirmation page.
    let kept = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    let volume = kept.body["items"][0]["name"].as_str().expect("a retired volume").to_owned();
    b.follow_link("Discard…").await;
    b.wait_for_text(&format!("Discard the volume {volume} of the site shop?")).await;
    let still = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    assert_eq!(still.body["items"].as_array().map_or(0, Vec::len), 1, "the confirmation discards nothing");
    b.press("Discard volume").await;
    b.wait_for_text(&format!("Volume {volume} discarded.")).await;
    let gone = admin.get(&format!("/api/v1/sites/{id}/volumes")).await;
    assert_eq!(gone.body["items"], serde_json::json!([]), "{}", gone.text);
    assert!(
        crate::support::runtime::engine().client().inspect_volume(&volume).await.is_err(),
        "the volume is removed from Docker"
    );

    // The overview lists the site with its last good backup; a site without one, and its
    // failed backup (a row as the job leaves it), stand out above it.
    // Running before the test ends, as every site the runtime tests delete: a site still being
    // created when it is deleted can leave its customer's network for a later reconcile pass.
    let blog = app.running_site(&admin, &customer, "blog", "blog.ui-backups.test").await;
    let blog_id = blog["id"].as_str().expect("id");
    let error = Some("the site's data volume does not exist yet");
    backup_row(&app.db, blog_id, &customer, chrono::Utc::now(), (0, 0), error).await;
    b.open("/admin/backups").await;
    b.wait_for_text("Last good backup per site").await;
    let overview = b.body_text().await;
    assert!(overview.contains("1 of 2 sites have no verified backup from the last day"), "{overview}");
    let first = b.text_of("#b-sites + p + .table-wrap tbody tr:first-child").await;
    assert!(first.contains("blog") && first.contains("no backup"), "the site without a backup comes first: {first}");
    assert!(b.exists("#b-sites + p + .table-wrap tbody tr.row--failed").await, "and is marked");
    let shop_row = b.text_of("#b-sites + p + .table-wrap tbody tr:nth-child(2)").await;
    assert!(shop_row.contains("shop") && shop_row.contains("fresh"), "{shop_row}");
    let failures = b.text_of("#b-failures + .table-wrap").await;
    assert!(failures.contains("blog") && failures.contains("the site's data volume does not exist yet"), "{failures}");
    assert!(b.text_of("#b-storage + .table-wrap").await.contains("local"));
    assert!(b.exists("a[href='/admin/backups/drills']").await && b.exists("a[href='/admin/plans']").await);
    b.snap("backups-overview").await;
    b.close().await;
    app.finish().await;
}

#[tokio::test]
async fn customers_back_up_and_restore_their_own_sites_only() {
    const HOST: &str = "home.ui-backups.test";
    let app = TestApp::spawn_runtime().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "alice@ui-backups.example", "business").await;
    let b_customer = app.customer(&admin, "bob@ui-backups.example", "business").await;
    let alice = app.customer_user(&admin, &a, "alice@ui-backups-user.example").await;
    let bob = app.customer_user(&admin, &b_customer, "bob@ui-backups-user.example").await;
    let site = app.running_site(&alice, &a, "home", HOST).await;
    let id = site["id"].as_str().expect("id").to_owned();
    let res = bob.post("/api/v1/sites", &serde_json::json!({"name": "bobs"})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    let bobs_site = res.str("id");
    let data = volume_dir(&app, &id).await;
    std::fs::write(data.join("index.html"), "<h1>alice's page</h1>\n").expect("write");

    let mut b = Browser::start(&app, "backups-portal", Js::On).await;
    b.sign_in("/portal/login", "alice@ui-backups-user.example", "Portal-Password-42", None).await;
    b.wait_for_text("My sites").await;
    b.assert_js_state().await;
    b.follow_link("home").await;
    b.wait_for_text("No backups yet.").await;
    let page = b.path().await;
    assert_eq!(page, format!("/portal/sites/{id}"));
    b.press("Back up now").await;
    b.wait_for_text("Backup queued.").await;
    let section = wait_on_page(&b, &page, "#backups", "succeeded").await;
    assert!(section.contains("yes"), "{section}");
    assert!(!section.contains("Volumes the site no longer uses"), "volumes are for administrators");
    scroll_to(&b, "backups").await;
    b.snap("portal-site-backups").await;
    let restore = href_of(&b, "#backups a[href$='/restore']").await;
    let download = href_of(&b, "#backups a[href$='/download']").await;
    let backup_id = restore.trim_end_matches("/restore").rsplit('/').next().expect("backup id").to_owned();

    // Bob finds none of it: not Alice's site page, not her backup's confirmation or download
    // (under her site's id or his own), not a restore of it; and a POST changes nothing.
    let bob_paths = [
        format!("/portal/sites/{id}"),
        restore.clone(),
        download.clone(),
        format!("/portal/sites/{bobs_site}/backups/{backup_id}/restore"),
        format!("/portal/sites/{bobs_site}/backups/{backup_id}/download"),
        "/admin/backups".to_owned(),
    ];
    for path in &bob_paths {
        let res = bob.get(path).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}: {}", res.text);
        assert!(res.text.contains("Page not found"), "{path}: {}", res.text);
    }
    let csrf = bob.csrf.clone().expect("csrf token");
    let form = format!("csrf_token={csrf}").into_bytes();
    let form_type = Some("application/x-www-form-urlencoded");
    for path in [restore.clone(), format!("/portal/sites/{bobs_site}/backups/{backup_id}/restore")] {
        let res = bob.raw(Method::POST, &path, form_type, form.clone()).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}: {}", res.text);
    }
    let res = bob.raw(Method::POST, &format!("/portal/sites/{id}/backups"), form_type, form.clone()).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "Bob cannot back up Alice's site: {}", res.text);
    assert_eq!(restore_runs(&admin).await, 0, "nothing restored");

    // Alice downloads her tar; a GET on the restore address only asks.
    let (status, _, _, body) = fetch(&alice, &download).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file_in_tar(&body, "index.html").as_deref(), Some("<h1>alice's page</h1>\n"));
    let asked = alice.get(&restore).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    assert!(asked.text.contains("The current files of home will be replaced"), "{}", asked.text);
    assert_eq!(restore_runs(&admin).await, 0, "a GET on the restore address never restores");

    std::fs::write(data.join("index.html"), "<h1>broken by a plugin</h1>\n").expect("write");
    b.follow_link("Restore…").await;
    b.wait_for_text("The current files of home will be replaced").await;
    b.press("Restore this backup").await;
    b.wait_for_text("Restore started.").await;
    let progress = b.path().await;
    assert!(progress.starts_with(&format!("/portal/sites/{id}/restores/")), "{progress}");
    // Bob cannot follow Alice's restore either.
    let res = bob.get(&progress).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text);
    let res = bob.get(&progress.replace(&id, &bobs_site)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text);
    let shown = wait_on_page(&b, &progress, "main", "Restored: home now serves").await;
    assert!(shown.contains("Check the backup"), "steps described for people: {shown}");
    assert!(!shown.contains("Open the flow run"), "the console's flow pages are not offered: {shown}");
    b.snap("portal-restore-progress").await;
    app.wait_ingress_settled(HOST, 200).await;
    let served = app.wait_ingress(HOST, 200).await;
    assert!(served.contains("alice's page"), "the restored file is served: {served}");
    assert_eq!(restore_runs(&admin).await, 1);
    b.close().await;
    app.finish().await;
}

/// The overview's queries on the embedded default (SQLite) as on PostgreSQL: the newest good
/// backup of each site, sites without one first, failures newest first, storage summed per
/// customer and target; administrators only.
#[tokio::test]
async fn the_backup_overview_reads_right_on_sqlite() {
    use berth_core::access::Caller;
    use berth_core::store::backup_overview::overview;
    use chrono::{Duration as Age, Utc};

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display());
    let app = TestApp::spawn_with(&[("BERTH_DATABASE_URL", &url)]).await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "lite@overview.example", "business").await;
    let owner = app.customer_user(&admin, &customer, "owner@overview.example").await;
    let site = |name: &'static str| {
        let (admin, customer) = (&admin, &customer);
        async move {
            let res = admin.post("/api/v1/sites", &serde_json::json!({"customer_id": customer, "name": name})).await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
            res.str("id")
        }
    };
    let (kept, stale, never) = (site("kept").await, site("stale").await, site("never").await);
    let now = Utc::now();
    backup_row(&app.db, &kept, &customer, now - Age::hours(5), (1000, 700), None).await;
    let newest = backup_row(&app.db, &kept, &customer, now - Age::hours(1), (1200, 30), None).await;
    backup_row(&app.db, &kept, &customer, now - Age::minutes(10), (0, 0), Some("disk full")).await;
    backup_row(&app.db, &stale, &customer, now - Age::days(3), (500, 500), None).await;

    let found = overview(&app.db, &Caller::system("test"), 10).await.expect("overview");
    let order: Vec<&str> = found.sites.iter().map(|s| s.site_name.as_str()).collect();
    assert_eq!(order, ["never", "stale", "kept"], "none first, then the oldest");
    let last = found.sites[2].last_good.as_ref().expect("kept has a good backup");
    assert_eq!((last.backup_id, last.size_bytes), (newest, Some(1200)), "the newest good one, not the failed one");
    assert_eq!(found.failures.len(), 1);
    assert_eq!(found.failures[0].backup.error.as_deref(), Some("disk full"));
    assert_eq!(found.failures[0].site_name.as_deref(), Some("kept"));
    assert_eq!(found.storage.len(), 1);
    assert_eq!((found.storage[0].added_bytes, found.storage[0].backups), (1230, 3), "{:?}", found.storage);
    assert_eq!(found.sites[0].site_id.to_string(), never);
    assert!(found.sites[0].last_good.is_none());

    let page = admin.get("/admin/backups").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("2 of 3 sites have no verified backup from the last day"), "{}", page.text);
    assert!(page.text.contains("over a day old") && page.text.contains("disk full"), "{}", page.text);
    let caller = Caller {
        scope: berth_core::access::Scope::Customer(customer.parse().expect("uuid")),
        ..Caller::system("owner")
    };
    assert!(matches!(overview(&app.db, &caller, 10).await, Err(berth_core::Error::Forbidden)));
    assert_eq!(owner.get("/admin/backups").await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}
