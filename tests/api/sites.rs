use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn create_get_patch_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "web@example.com", "business").await;

    let res = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": customer, "name": "shop", "domains": ["Shop.Example.com", "bücher.example"], "env": {"DB_PASSWORD": "s3cret-value"}}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["status"], "pending");
    assert_eq!(res.body["desired_state"], "running");
    assert_eq!(res.body["image"], "berth/site-static:latest");
    assert_eq!(res.body["domains"], json!(["shop.example.com", "xn--bcher-kva.example"]));
    let id = res.str("id");

    let got = admin.get(&format!("/api/v1/sites/{id}")).await;
    assert_eq!(got.body["env"]["DB_PASSWORD"], "s3cret-value");
    // Read back with the site's row in one query: every domain, in the order given.
    assert_eq!(got.body["domains"], json!(["shop.example.com", "xn--bcher-kva.example"]));
    let listed = admin.get("/api/v1/sites").await;
    assert!(listed.body["items"][0].get("env").is_none(), "lists leave secrets out: {}", listed.text);

    // The environment is sealed at rest: the raw column does not contain the value.
    let row = app
        .db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT env FROM sites WHERE id = '{id}'"),
        ))
        .await
        .expect("query")
        .expect("row");
    let raw: String = row.try_get("", "env").expect("env column");
    assert!(!raw.contains("s3cret"), "env stored in clear: {raw}");

    let patched = admin
        .patch(
            &format!("/api/v1/sites/{id}"),
            &json!({"image": "nginx:1.27", "domains": ["shop.example.com"], "env": {"A": "1"}, "desired_state": "stopped"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["image"], "nginx:1.27");
    assert_eq!(patched.body["domains"], json!(["shop.example.com"]));
    assert_eq!(patched.body["env"], json!({"A": "1"}));
    assert_eq!(patched.body["desired_state"], "stopped");

    // A domain freed by the patch can be used by another site.
    let other = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": "books", "domains": ["bücher.example"]}))
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);

    assert_eq!(admin.delete(&format!("/api/v1/sites/{id}")).await.status, StatusCode::NO_CONTENT);
    admin.get(&format!("/api/v1/sites/{id}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn plan_limit_is_a_422_naming_the_limit() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "small@example.com", "starter").await;
    let first = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "one"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let res = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "two"})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(res.text.contains("starter") && res.text.contains("at most 1 site"), "{}", res.text);
}

#[tokio::test]
async fn concurrent_creations_cannot_exceed_the_plan() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "race@example.com", "business").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let admin = admin.clone();
        let customer = customer.clone();
        tasks.push(tokio::spawn(async move {
            admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": format!("s{i}")})).await.status
        }));
    }
    let mut created = 0;
    for t in tasks {
        let status = t.await.expect("task");
        assert!(status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
        created += usize::from(status == StatusCode::CREATED);
    }
    assert_eq!(created, 5, "business allows 5 sites");
}

#[tokio::test]
async fn names_domains_images_and_env_are_validated() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "meta@example.com", "pro").await;
    let hostile =
        ["a;b", "$(reboot)", "`id`", "a\nb", "\"q\"", "'q'", "{x}", "../etc", "A_B", "-lead", "trail-", "a b"];
    for name in hostile {
        let res = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": name})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(res.error_fields(), ["name"], "{name:?}");
    }
    for domain in [
        "a;b.example",
        "$(id).example",
        "`id`.example",
        "x\n.example",
        "\"x\".example",
        "{a}.example",
        "../x.example",
        "*.example.com",
        "under_score.example",
        "localhost",
        "1.2.3.4",
        &format!("{}.example", "a".repeat(64)),
    ] {
        let res =
            admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "ok", "domains": [domain]})).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(res.error_fields(), ["domains[0]"], "{domain:?}");
    }
    for image in ["Nginx", "nginx; rm -rf /", "nginx:$(id)", "../img", "nginx latest"] {
        let res = admin.post("/api/v1/sites", &json!({"customer_id": customer, "name": "ok", "image": image})).await;
        assert_eq!(res.error_fields(), ["image"], "{image:?}");
    }
    let res = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": customer, "name": "ok", "env": {"BAD-KEY": "x", "GOOD": "y", "1X": "z"}}),
        )
        .await;
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(fields, ["env.1X", "env.BAD-KEY"]);
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": customer, "name": "ok", "domains": ["a.example", "A.example"]}))
        .await;
    assert_eq!(res.error_fields(), ["domains[1]"]);

    // Nothing of the above was stored.
    let listed = admin.get("/api/v1/sites").await;
    assert_eq!(listed.body["items"].as_array().expect("items").len(), 0);
}

#[tokio::test]
async fn duplicates_are_conflicts() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "a@example.com", "pro").await;
    let b = app.customer(&admin, "b@example.com", "pro").await;
    let res =
        admin.post("/api/v1/sites", &json!({"customer_id": a, "name": "www", "domains": ["taken.example"]})).await;
    assert_eq!(res.status, StatusCode::CREATED);
    admin
        .post("/api/v1/sites", &json!({"customer_id": a, "name": "www"}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    // Another customer may use the name, but never the domain.
    let same_name = admin.post("/api/v1/sites", &json!({"customer_id": b, "name": "www"})).await;
    assert_eq!(same_name.status, StatusCode::CREATED);
    let res =
        admin.post("/api/v1/sites", &json!({"customer_id": b, "name": "other", "domains": ["TAKEN.example"]})).await;
    res.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(res.text.contains("taken.example"));
}

#[tokio::test]
async fn admins_must_name_the_customer_and_inactive_customers_get_no_sites() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let res = admin.post("/api/v1/sites", &json!({"name": "www"})).await;
    assert_eq!(res.error_fields(), ["customer_id"]);
    let missing = admin.post("/api/v1/sites", &json!({"customer_id": uuid::Uuid::now_v7(), "name": "www"})).await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");

    let c = app.customer(&admin, "late@example.com", "pro").await;
    admin.patch(&format!("/api/v1/customers/{c}"), &json!({"status": "suspended"})).await;
    admin
        .post("/api/v1/sites", &json!({"customer_id": c, "name": "www"}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn list_filters() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let a = app.customer(&admin, "fa@example.com", "pro").await;
    let b = app.customer(&admin, "fb@example.com", "pro").await;
    for (c, name) in [(&a, "alpha-blog"), (&a, "alpha-shop"), (&b, "beta-blog")] {
        assert_eq!(
            admin.post("/api/v1/sites", &json!({"customer_id": c, "name": name})).await.status,
            StatusCode::CREATED
        );
    }
    let of_a = admin.get(&format!("/api/v1/sites?customer_id={a}")).await;
    assert_eq!(of_a.body["items"].as_array().expect("items").len(), 2);
    let blogs = admin.get("/api/v1/sites?q=BLOG").await;
    assert_eq!(blogs.body["items"].as_array().expect("items").len(), 2);
    let pending = admin.get("/api/v1/sites?status=pending&limit=1").await;
    assert_eq!(pending.body["items"].as_array().expect("items").len(), 1);
    assert!(pending.body["next_cursor"].is_string());
    admin.get("/api/v1/sites?status=sleeping").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
}
