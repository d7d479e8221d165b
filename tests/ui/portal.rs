//! A customer signs in to the portal and sees only their own sites; another customer's site
//! and every admin page answer the same not-found page as a missing object.

use reqwest::StatusCode;
use serde_json::json;

use super::{Browser, Js};
use crate::support::{Client, TestApp};

async fn site(admin: &Client, customer_id: &str, name: &str) -> String {
    let res = admin
        .post("/api/v1/sites", &json!({"customer_id": customer_id, "name": name, "domains": [format!("{name}.example.org")], "env": {"SECRET_TOKEN": "hunter2-hunter2"}}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("id")
}

async fn portal_flow(js: Js) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "ada@lovelace.example", "business").await;
    let theirs = app.customer(&admin, "grace@hopper.example", "business").await;
    let own_site = site(&admin, &mine, "analytical-engine").await;
    site(&admin, &mine, "notes").await;
    let other_site = site(&admin, &theirs, "cobol-compiler").await;
    app.customer_user(&admin, &mine, "ada@portal.example").await;

    let mut b = Browser::start(&app, "portal", js).await;
    b.open("/portal").await;
    b.wait_for_text("Sign in to the customer portal").await;
    b.assert_js_state().await;
    b.sign_in("/portal/login", "ada@portal.example", "Portal-Password-42", None).await;
    b.wait_for_text("My sites").await;
    assert_eq!(b.path().await, "/portal");
    let page = b.body_text().await;
    assert!(page.contains("analytical-engine") && page.contains("notes"), "{page}");
    assert!(!page.contains("cobol-compiler"), "another customer's site is listed: {page}");
    b.snap("my-sites").await;
    // The same page on a phone-sized window: the layout must stay readable.
    b.client.set_window_size(390, 844).await.expect("resize the window");
    b.snap("my-sites-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize the window");

    b.follow_link("analytical-engine").await;
    b.wait_for_text("Operations and logs").await;
    let page = b.body_text().await;
    assert!(page.contains("SECRET_TOKEN") && !page.contains("hunter2"), "{page}");
    b.snap("site-detail").await;

    // The not-found page for a missing site is the reference every forbidden page must equal.
    b.open(&format!("/portal/sites/{}", uuid::Uuid::now_v7())).await;
    b.wait_for_text("Page not found").await;
    let missing = b.body_text().await;
    b.snap("missing-site").await;
    b.open(&format!("/portal/sites/{other_site}")).await;
    b.wait_for_text("Page not found").await;
    assert_eq!(b.body_text().await, missing, "another customer's site looks exactly like a missing one");
    b.snap("other-customers-site").await;
    for path in ["/admin", "/admin/customers", &format!("/admin/sites/{own_site}"), &format!("/admin/customers/{mine}")]
    {
        b.open(path).await;
        b.wait_for_text("Page not found").await;
        assert_eq!(b.body_text().await, missing, "{path} must look like a missing page");
    }
    b.snap("admin-url").await;

    b.open("/portal/account").await;
    b.wait_for_text("API tokens").await;
    b.fill("name", "deploy").await;
    b.press("Create token").await;
    b.wait_for_text("shown only once").await;
    let token = b.text_of("#new-token").await;
    assert!(token.starts_with("berth_"), "{token}");
    assert_eq!(Client::with_token(&app.base, &token).get("/api/v1/sites").await.status, StatusCode::OK);
    b.snap("token-created").await;
    b.follow_link("Back to your account").await;
    b.wait_for_text("deploy").await;
    b.press("Revoke deploy").await;
    b.wait_for_text("Token revoked.").await;
    assert_eq!(Client::with_token(&app.base, &token).get("/api/v1/sites").await.status, StatusCode::UNAUTHORIZED);
    b.snap("account").await;
    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn customer_sees_only_their_own_sites_with_javascript() {
    portal_flow(Js::On).await;
}

#[tokio::test]
async fn customer_sees_only_their_own_sites_without_javascript() {
    portal_flow(Js::Off).await;
}
