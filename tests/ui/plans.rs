//! An administrator sets a plan's backup schedule and retention in the console, and overrides
//! them for one site; bad values come back on the form with their messages.

use reqwest::Method;
use serde_json::json;

use super::{Browser, Js};
use crate::support::TestApp;

async fn plans_flow(js: Js) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "backups@example.com", "business").await;
    let site = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "shop"})).await;
    let site_id = site.str("id");

    let mut b = Browser::start(&app, "plans", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    b.follow_link("Plans").await;
    b.wait_for_text("Verified daily (cron, UTC)").await;
    b.wait_for_text("24 h · 14 d · 4 w · 12 m · 10 y").await;
    b.snap("plans").await;

    b.follow_link("Business").await;
    b.wait_for_text("Retention: the newest good backup of each of the last").await;
    b.fill("backup_cron", "0 */10 * * * *").await;
    b.fill("keep_weekly", "many").await;
    b.press("Save backup settings").await;
    b.wait_for_text("has 6 fields").await;
    b.wait_for_text("must be a whole number").await;
    b.snap("plan-form-errors").await;
    b.fill("backup_cron", "15 */2 * * *").await;
    b.fill("keep_weekly", "6").await;
    b.press("Save backup settings").await;
    b.wait_for_text("Backup settings of Business saved.").await;
    b.wait_for_text("24 h · 14 d · 6 w · 12 m · 10 y").await;
    b.snap("plan-saved").await;
    let plans = admin.get("/api/v1/plans").await;
    assert_eq!(plans.body[1]["backup_cron"], "15 */2 * * *");
    assert_eq!(plans.body[1]["keep_weekly"], 6);

    b.open(&format!("/admin/sites/{site_id}")).await;
    b.follow_link("Backup settings").await;
    b.wait_for_text("This site's overrides").await;
    b.wait_for_text("Blank: the plan's, 15 */2 * * *.").await;
    b.fill("keep_daily", "3").await;
    b.fill("backup_verify_cron", "0 0 31 2 *").await;
    b.press("Save overrides").await;
    b.wait_for_text("never fires").await;
    b.fill("backup_verify_cron", "").await;
    b.press("Save overrides").await;
    b.wait_for_text("Backup settings saved.").await;
    b.snap("site-overrides-saved").await;
    let policy = admin.request(Method::GET, &format!("/api/v1/sites/{site_id}/backup-policy"), None).await;
    assert_eq!(policy.body["effective"]["keep_daily"], 3);
    assert_eq!(policy.body["effective"]["backup_cron"], "15 */2 * * *");
    assert_eq!(policy.body["overrides"]["backup_verify_cron"], serde_json::Value::Null);
    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn admin_sets_backup_schedules_and_retention_with_javascript() {
    plans_flow(Js::On).await;
}

#[tokio::test]
async fn admin_sets_backup_schedules_and_retention_without_javascript() {
    plans_flow(Js::Off).await;
}
