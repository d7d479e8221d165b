//! The isolation matrix: customer A, by session and by token, against every customer and site
//! endpoint with customer B's ids. Another tenant's object is a 404 with none of its data.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Client, TestApp};

struct Tenant {
    customer: String,
    site: String,
    site_name: String,
    session: Client,
    token: Client,
}

async fn tenant(app: &TestApp, admin: &Client, tag: &str) -> Tenant {
    let customer = app.customer(admin, &format!("{tag}@tenant.example"), "pro").await;
    let site_name = format!("{tag}-secret-site");
    let site = admin
        .post(
            "/api/v1/sites",
            &json!({"customer_id": customer, "name": site_name, "domains": [format!("{tag}.tenant.example")], "env": {"KEY": format!("{tag}-env-value")}}),
        )
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{}", site.text);
    let session = app.customer_user(admin, &customer, &format!("{tag}-user@tenant.example")).await;
    let token =
        Client::with_token(&app.base, &session.post("/api/v1/tokens", &json!({"name": "t"})).await.str("token"));
    Tenant { customer, site: site.str("id"), site_name, session, token }
}

#[tokio::test]
async fn customer_a_cannot_see_or_touch_customer_b() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let a = tenant(&app, &admin, "alpha").await;
    let b = tenant(&app, &admin, "bravo").await;
    let leaks = |text: &str| text.contains(&b.site) || text.contains(&b.site_name) || text.contains("bravo");

    for (how, client) in [("session", &a.session), ("token", &a.token)] {
        // Own objects work.
        let own = client.get(&format!("/api/v1/sites/{}", a.site)).await;
        assert_eq!(own.status, StatusCode::OK, "{how}: {}", own.text);
        assert_eq!(own.body["env"]["KEY"], "alpha-env-value");

        // B's site: 404 on every verb, nothing of B in the answer.
        let site_calls: [(Method, Option<serde_json::Value>); 3] =
            [(Method::GET, None), (Method::PATCH, Some(json!({"image": "nginx:1"}))), (Method::DELETE, None)];
        for (method, body) in site_calls {
            let res = client.request(method.clone(), &format!("/api/v1/sites/{}", b.site), body.as_ref()).await;
            res.assert_problem(StatusCode::NOT_FOUND, "not-found");
            assert!(!leaks(&res.text), "{how} {method}: {}", res.text);
        }
        // Lists and filters only ever show A's sites.
        let list = client.get("/api/v1/sites").await;
        assert_eq!(list.body["items"].as_array().expect("items").len(), 1, "{how}");
        assert!(!leaks(&list.text), "{how}: {}", list.text);
        let filtered = client.get(&format!("/api/v1/sites?customer_id={}", b.customer)).await;
        assert_eq!(filtered.body["items"].as_array().expect("items").len(), 0, "{how}");

        // B's id hidden in a body: creating a site for B is "customer not found".
        let res =
            client.post("/api/v1/sites", &json!({"customer_id": b.customer, "name": format!("sneaky-{how}")})).await;
        res.assert_problem(StatusCode::NOT_FOUND, "not-found");
        assert!(!leaks(&res.text));
        // Claiming B's domain is a conflict that names only the domain the caller sent.
        let res = client
            .post("/api/v1/sites", &json!({"name": format!("grab-{how}"), "domains": ["bravo.tenant.example"]}))
            .await;
        res.assert_problem(StatusCode::CONFLICT, "conflict");
        assert!(!res.text.contains(&b.site) && !res.text.contains(&b.site_name));

        // Admin-only routes: 403, even with B's ids.
        for (method, path) in [
            (Method::GET, "/api/v1/customers".to_owned()),
            (Method::POST, "/api/v1/customers".to_owned()),
            (Method::GET, format!("/api/v1/customers/{}", b.customer)),
            (Method::PATCH, format!("/api/v1/customers/{}", b.customer)),
            (Method::DELETE, format!("/api/v1/customers/{}", b.customer)),
            (Method::GET, format!("/api/v1/customers/{}", a.customer)),
            (Method::GET, format!("/api/v1/customers/{}/users", b.customer)),
            (Method::POST, format!("/api/v1/customers/{}/users", b.customer)),
            (Method::GET, "/api/v1/audit".to_owned()),
        ] {
            let body = (method != Method::GET && method != Method::DELETE)
                .then(|| json!({"email": "x@example.com", "company_name": "X", "plan": "pro", "status": "cancelled"}));
            let body = if method == Method::PATCH { Some(json!({"status": "cancelled"})) } else { body };
            let res = client.request(method.clone(), &path, body.as_ref()).await;
            res.assert_problem(StatusCode::FORBIDDEN, "forbidden");
            assert!(!leaks(&res.text), "{how} {method} {path}: {}", res.text);
        }
    }

    // B is untouched by all of the above.
    let b_site = b.session.get(&format!("/api/v1/sites/{}", b.site)).await;
    assert_eq!(b_site.status, StatusCode::OK);
    assert_eq!(b_site.body["image"], "berth/site-static:latest");
    assert_eq!(admin.get(&format!("/api/v1/customers/{}", b.customer)).await.body["status"], "active");
    assert_eq!(b.token.get("/api/v1/sites").await.body["items"].as_array().expect("items").len(), 1);

    // A customer user creating a site without naming the customer gets one of their own.
    let own = a.session.post("/api/v1/sites", &json!({"name": "second"})).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    assert_eq!(own.body["customer_id"], a.customer.as_str());
}
