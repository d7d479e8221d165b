use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_site_follows_its_plan_unless_an_admin_overrides_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "owner@example.com", "business").await;
    let site = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "shop"})).await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let path = format!("/api/v1/sites/{}/backup-policy", site.str("id"));

    let got = admin.get(&path).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["plan"], "business");
    assert_eq!(got.body["overrides"]["backup_cron"], serde_json::Value::Null);
    assert_eq!(got.body["effective"]["backup_cron"], "0 * * * *");
    assert_eq!(got.body["effective"]["keep_daily"], 14);

    let put = admin
        .request(Method::PUT, &path, Some(&json!({"backup_cron": "*/30 * * * *", "keep_daily": 3, "keep_monthly": 0})))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["overrides"]["backup_cron"], "*/30 * * * *");
    assert_eq!(put.body["effective"]["backup_cron"], "*/30 * * * *");
    assert_eq!(put.body["effective"]["keep_daily"], 3);
    assert_eq!(put.body["effective"]["keep_monthly"], 0);
    assert_eq!(put.body["effective"]["keep_weekly"], 4, "not overridden: the plan's");

    // A plan change reaches what the site does not override, and only that.
    admin.patch("/api/v1/plans/business", &json!({"keep_weekly": 8, "keep_daily": 20})).await;
    let got = admin.get(&path).await;
    assert_eq!(got.body["effective"]["keep_weekly"], 8);
    assert_eq!(got.body["effective"]["keep_daily"], 3);

    // Bad overrides are refused per field and change nothing.
    let bad =
        admin.request(Method::PUT, &path, Some(&json!({"backup_verify_cron": "daily", "keep_hourly": 5000}))).await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(bad.error_fields(), ["backup_verify_cron", "keep_hourly"]);
    assert_eq!(admin.get(&path).await.body["effective"]["backup_cron"], "*/30 * * * *");

    // PUT replaces: an empty body follows the plan again.
    let reset = admin.request(Method::PUT, &path, Some(&json!({}))).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(reset.body["effective"]["backup_cron"], "0 * * * *");
    assert_eq!(reset.body["effective"]["keep_daily"], 20);

    // The owner sees what is in force but cannot change it; another customer sees nothing.
    let owner = app.customer_user(&admin, &customer, "user@owner.example").await;
    let seen = owner.get(&path).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert_eq!(seen.body["effective"]["keep_daily"], 20);
    owner
        .request(Method::PUT, &path, Some(&json!({"keep_daily": 365})))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let other = app.customer(&admin, "other@example.com", "pro").await;
    let stranger = app.customer_user(&admin, &other, "user@other.example").await;
    stranger.get(&path).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    admin
        .get(&format!("/api/v1/sites/{}/backup-policy", uuid::Uuid::now_v7()))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}
