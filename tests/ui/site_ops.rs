//! The "Operations and logs" panel of a site, in the admin console and the portal: Stop and
//! Start change the desired state (through the store, audited) and say so; without a container
//! runtime (the test default) the panel says there are no logs and offers no restart. A customer
//! cannot operate another customer's site.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Browser, Js};
use crate::support::{Client, TestApp};

async fn desired(admin: &Client, site: &str) -> String {
    let res = admin.get(&format!("/api/v1/sites/{site}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.str("desired_state")
}

async fn site(admin: &Client, customer_id: &str, name: &str) -> String {
    let res = admin.post("/api/v1/sites", &json!({"customer_id": customer_id, "name": name})).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text);
    res.str("id")
}

async fn site_ops_flow(js: Js) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mine = app.customer(&admin, "ops@lighthouse.example", "business").await;
    let theirs = app.customer(&admin, "ops@other.example", "business").await;
    let shop = site(&admin, &mine, "shop").await;
    let other = site(&admin, &theirs, "elsewhere").await;
    let portal_user = app.customer_user(&admin, &mine, "keeper@lighthouse.example").await;
    assert_eq!(desired(&admin, &shop).await, "running", "a new site is wanted running");

    let mut b = Browser::start(&app, "site-ops", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    b.open(&format!("/admin/sites/{shop}")).await;
    b.wait_for_text("Operations and logs").await;
    let panel = b.text_of("#operations").await;
    assert!(panel.contains("No container runtime is configured"), "{panel}");
    assert!(!b.exists("#operations form[action$='/restart']").await, "no restart without a running container");
    // The panel is below the settings: bring it into the screenshot (WebDriver's own script
    // runs even with the page's JavaScript off).
    b.client.execute("document.getElementById('operations').scrollIntoView()", vec![]).await.expect("scroll");
    b.snap("site-operations").await;

    b.press("Stop").await;
    b.wait_for_text("Site shop is set to stop.").await;
    assert_eq!(desired(&admin, &shop).await, "stopped");
    assert!(b.exists("#operations form[action$='/start']").await, "a stopped site offers Start");
    b.snap("site-stopped").await;
    b.press("Start").await;
    b.wait_for_text("Site shop is set to start.").await;
    assert_eq!(desired(&admin, &shop).await, "running");
    let audit = admin.get(&format!("/api/v1/audit?target_id={shop}")).await;
    assert!(audit.text.contains("site.stop") && audit.text.contains("site.start"), "audited: {}", audit.text);

    // The customer, in the portal, operates their own site.
    b.press("Sign out").await;
    b.wait_for_text("You have signed out.").await;
    b.sign_in("/portal/login", "keeper@lighthouse.example", "Portal-Password-42", None).await;
    b.wait_for_text("My sites").await;
    b.follow_link("shop").await;
    b.wait_for_text("Operations and logs").await;
    b.press("Stop").await;
    b.wait_for_text("Site shop is set to stop.").await;
    assert!(b.path().await.starts_with("/portal/sites/"), "{}", b.path().await);
    assert_eq!(desired(&admin, &shop).await, "stopped");
    b.snap("portal-site-stopped").await;
    b.close().await;

    // Another customer's site: the not-found page, and nothing changes.
    let csrf = portal_user.csrf.clone().expect("csrf token");
    let form = format!("csrf_token={csrf}").into_bytes();
    let form_type = Some("application/x-www-form-urlencoded");
    for action in ["stop", "restart"] {
        let res =
            portal_user.raw(Method::POST, &format!("/portal/sites/{other}/{action}"), form_type, form.clone()).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{action}: {}", res.text);
        assert!(res.text.contains("Page not found"), "{}", res.text);
    }
    assert_eq!(desired(&admin, &other).await, "running");
    // Without the CSRF token nothing happens either.
    let res = portal_user.raw(Method::POST, &format!("/portal/sites/{shop}/start"), form_type, b"x=1".to_vec()).await;
    assert_ne!(res.status, StatusCode::SEE_OTHER, "{}", res.text);
    assert_eq!(desired(&admin, &shop).await, "stopped");
    app.stop().await;
}

#[tokio::test]
async fn site_operations_change_the_desired_state_with_javascript() {
    site_ops_flow(Js::On).await;
}

#[tokio::test]
async fn site_operations_change_the_desired_state_without_javascript() {
    site_ops_flow(Js::Off).await;
}
