use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn create_get_patch_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let res = admin
        .post(
            "/api/v1/customers",
            &json!({"email": " Ops@Acme.Example ", "company_name": " Acme ", "plan": "business"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    assert_eq!(res.body["email"], "ops@acme.example");
    assert_eq!(res.body["company_name"], "Acme");
    assert_eq!(res.body["status"], "active");
    let id = res.str("id");

    let got = admin.get(&format!("/api/v1/customers/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["plan"], "business");

    let patched = admin.patch(&format!("/api/v1/customers/{id}"), &json!({"plan": "pro", "status": "suspended"})).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["plan"], "pro");
    assert_eq!(patched.body["status"], "suspended");

    admin
        .patch(&format!("/api/v1/customers/{id}"), &json!({"plan": "gold"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    admin
        .patch(&format!("/api/v1/customers/{id}"), &json!({"status": "zombie"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    assert_eq!(admin.delete(&format!("/api/v1/customers/{id}")).await.status, StatusCode::NO_CONTENT);
    admin.get(&format!("/api/v1/customers/{id}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
    admin.delete(&format!("/api/v1/customers/{id}")).await.assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn duplicates_and_invalid_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.customer(&admin, "dup@example.com", "starter").await;
    admin
        .post("/api/v1/customers", &json!({"email": "DUP@example.com", "company_name": "Other", "plan": "starter"}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");

    let res = admin
        .post("/api/v1/customers", &json!({"email": "not-an-email", "company_name": "", "plan": "platinum"}))
        .await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let mut fields = res.error_fields();
    fields.sort();
    assert_eq!(fields, ["company_name", "email", "plan"]);

    let long = "x".repeat(201);
    let res = admin
        .post("/api/v1/customers", &json!({"email": "a@b.example", "company_name": long, "plan": "starter"}))
        .await;
    assert_eq!(res.error_fields(), ["company_name"]);
}

#[tokio::test]
async fn delete_is_refused_while_sites_exist() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.customer(&admin, "busy@example.com", "starter").await;
    let site = admin.post("/api/v1/sites", &json!({"customer_id": id, "name": "www"})).await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let res = admin.delete(&format!("/api/v1/customers/{id}")).await;
    res.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(res.str("detail").contains("1 site"));
    assert_eq!(admin.get(&format!("/api/v1/customers/{id}")).await.status, StatusCode::OK);

    assert_eq!(admin.delete(&format!("/api/v1/sites/{}", site.str("id"))).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&format!("/api/v1/customers/{id}")).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn downgrading_below_the_current_site_count_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = app.customer(&admin, "grow@example.com", "business").await;
    for name in ["one", "two"] {
        let res = admin.post("/api/v1/sites", &json!({"customer_id": id, "name": name})).await;
        assert_eq!(res.status, StatusCode::CREATED);
    }
    let res = admin.patch(&format!("/api/v1/customers/{id}"), &json!({"plan": "starter"})).await;
    res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(res.text.contains("at most 1"), "{}", res.text);
}

#[tokio::test]
async fn list_filters_search_and_cursor_pagination() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let plan = if i % 2 == 0 { "starter" } else { "pro" };
        ids.push(app.customer(&admin, &format!("c{i}@shop{i}.example"), plan).await);
    }
    admin.patch(&format!("/api/v1/customers/{}", ids[0]), &json!({"status": "cancelled"})).await;
    let special = admin
        .post(
            "/api/v1/customers",
            &json!({"email": "special@example.org", "company_name": "100%_Real Bakery", "plan": "starter"}),
        )
        .await
        .str("id");

    // Walk every page: newest first, no duplicates, nothing lost.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/customers?limit=3&cursor={c}"),
            None => "/api/v1/customers?limit=3".to_owned(),
        };
        let page = admin.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.body["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.push(special.clone());
    expected.reverse();
    assert_eq!(seen, expected);

    let pro = admin.get("/api/v1/customers?plan=pro").await;
    assert_eq!(pro.body["items"].as_array().expect("items").len(), 3);
    let cancelled = admin.get("/api/v1/customers?status=cancelled").await;
    assert_eq!(cancelled.body["items"][0]["id"], ids[0].as_str());
    assert_eq!(cancelled.body["items"].as_array().expect("items").len(), 1);

    let by_email = admin.get("/api/v1/customers?q=SHOP3").await;
    assert_eq!(by_email.body["items"].as_array().expect("items").len(), 1);
    assert_eq!(by_email.body["items"][0]["id"], ids[3].as_str());
    // `%` and `_` are literal characters, not wildcards.
    let literal = admin.get("/api/v1/customers?q=100%25_real").await;
    assert_eq!(literal.body["items"].as_array().expect("items").len(), 1);
    assert_eq!(literal.body["items"][0]["id"], special.as_str());
    let wildcard = admin.get("/api/v1/customers?q=%25").await;
    assert_eq!(wildcard.body["items"].as_array().expect("items").len(), 1);

    admin.get("/api/v1/customers?status=zombie").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    admin.get("/api/v1/customers?cursor=nope").await.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
}
