use reqwest::StatusCode;

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
