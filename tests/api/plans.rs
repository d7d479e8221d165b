use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn seeded_plans_are_listed_smallest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let res = admin.get("/api/v1/plans").await;
    assert_eq!(res.status, StatusCode::OK);
    let ids: Vec<&str> = res.body.as_array().expect("array").iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["starter", "business", "pro"]);
    assert_eq!(res.body[0]["max_sites"], 1);
    assert!(res.body[2]["memory_mb"].as_i64().expect("memory") > res.body[0]["memory_mb"].as_i64().expect("memory"));

    app.client().get("/api/v1/plans").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn plans_carry_backup_schedules_and_retention() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let plans = admin.get("/api/v1/plans").await;
    for plan in plans.body.as_array().expect("array") {
        assert_eq!(plan["backup_cron"], "0 * * * *", "{plan}");
        assert_eq!(plan["backup_verify_cron"], "30 3 * * *", "{plan}");
        assert_eq!(plan["keep_hourly"], 24);
        assert_eq!(plan["keep_weekly"], 4);
        assert_eq!(plan["keep_monthly"], 12);
        assert_eq!(plan["keep_yearly"], 10);
        // The days a plan promised became its daily copies.
        assert_eq!(plan["keep_daily"], plan["backup_retention_days"], "{plan}");
    }
    assert_eq!(plans.body[2]["keep_daily"], 30, "pro keeps 30 daily copies");
}

#[tokio::test]
async fn admins_change_a_plans_backup_settings_and_bad_values_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let res = admin
        .patch("/api/v1/plans/business", &json!({"backup_cron": " 15  */2 * * * ", "keep_daily": 10, "keep_yearly": 0}))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(res.body["backup_cron"], "15 */2 * * *");
    assert_eq!(res.body["keep_daily"], 10);
    assert_eq!(res.body["backup_retention_days"], 10, "the older field follows keep_daily");
    assert_eq!(res.body["keep_yearly"], 0);
    assert_eq!(res.body["backup_verify_cron"], "30 3 * * *", "absent fields are unchanged");
    let listed = admin.get("/api/v1/plans").await;
    assert_eq!(listed.body[1]["backup_cron"], "15 */2 * * *");

    // Every bad field is named; nothing changes.
    let res = admin
        .patch(
            "/api/v1/plans/business",
            &json!({"backup_cron": "0 */10 * * * *", "backup_verify_cron": "0 0 31 2 *", "keep_weekly": -1, "keep_monthly": 1001}),
        )
        .await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(res.error_fields(), ["backup_cron", "backup_verify_cron", "keep_weekly", "keep_monthly"]);
    assert!(res.text.contains("has 6 fields"), "{}", res.text);
    assert!(res.text.contains("never fires"), "{}", res.text);
    let listed = admin.get("/api/v1/plans").await;
    assert_eq!(listed.body[1]["backup_cron"], "15 */2 * * *");
    assert_eq!(listed.body[1]["keep_weekly"], 4);

    admin
        .patch("/api/v1/plans/platinum", &json!({"keep_daily": 3}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    admin
        .patch("/api/v1/plans/business", &json!({"keep_daily": "seven"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // Customers read plans but cannot change them.
    let customer = app.customer(&admin, "plans@example.com", "starter").await;
    let user = app.customer_user(&admin, &customer, "user@plans.example").await;
    user.patch("/api/v1/plans/starter", &json!({"keep_daily": 365}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(user.get("/api/v1/plans").await.body[0]["keep_daily"], 7);

    // The change is in the audit log.
    let audit = admin.get("/api/v1/audit?action=plan.backup_policy").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    assert!(audit.text.contains("15 */2 * * *"), "{}", audit.text);
}
