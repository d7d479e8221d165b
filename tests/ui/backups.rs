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
    assert!(b.text_of("#backups").await.contains("before a restore"));

    // The overview lists the site with its last good backup.
    b.open("/admin/backups").await;
    b.wait_for_text("Last good backup per site").await;
    let overview = b.body_text().await;
    assert!(overview.contains("shop") && overview.contains("fresh"), "{overview}");
    assert!(overview.contains("The site has a verified backup from the last day."), "{overview}");
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
