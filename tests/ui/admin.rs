//! An administrator signs in, creates a customer (fixing a bad e-mail the form rejects),
//! creates a site, finds it with the search box, and deletes it after confirming.

use fantoccini::Locator;
use serde_json::json;

use super::{Browser, Js};
use crate::support::{TestApp, ADMIN_EMAIL, PUBLIC_URL};

async fn admin_flow(js: Js) {
    let app = TestApp::spawn().await;
    let mut b = Browser::start(&app, "admin", js).await;

    b.open("/admin/login").await;
    b.assert_js_state().await;
    b.snap("sign-in").await;
    b.sign_in("/admin/login", ADMIN_EMAIL, "not-the-password", None).await;
    b.wait_for_text("Wrong e-mail or password.").await;
    b.snap("wrong-password").await;
    b.sign_in_as_admin().await;
    assert_eq!(b.path().await, "/admin");
    b.snap("dashboard").await;

    b.follow_link("Customers").await;
    b.wait_for_text("No customers yet.").await;
    b.follow_link("New customer").await;
    b.wait_for_text("Company name").await;
    b.fill("email", "not-an-email").await;
    b.fill("company_name", "Harbour Bakery").await;
    b.select("plan", "business").await;
    b.press("Create customer").await;
    b.wait_for_text("Please correct the fields marked below.").await;
    let error = b.text_of("#field-email-error").await;
    assert!(!error.is_empty(), "the e-mail field shows its error inline");
    assert_eq!(
        b.client
            .find(Locator::Css("#field-email"))
            .await
            .expect("email")
            .attr("aria-invalid")
            .await
            .expect("attr")
            .as_deref(),
        Some("true")
    );
    // What was typed survives the round trip.
    assert_eq!(
        b.client
            .find(Locator::Css("#field-company-name"))
            .await
            .expect("company")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("Harbour Bakery")
    );
    b.snap("customer-inline-error").await;

    b.fill("email", "orders@harbour-bakery.example").await;
    b.press("Create customer").await;
    b.wait_for_text("Customer Harbour Bakery created.").await;
    b.snap("customer-detail").await;
    b.follow_link("Customers").await;
    b.wait_for_text("orders@harbour-bakery.example").await;
    b.snap("customers").await;
    b.follow_link("Harbour Bakery").await;
    b.wait_for_text("Portal users").await;
    b.fill("email", "till@harbour-bakery.example").await;
    b.press("Add user").await;
    b.wait_for_text("Send this one-time link").await;
    let link = b.text_of("#set-password-link").await;
    assert!(link.starts_with(&format!("{PUBLIC_URL}/set-password?token=")), "{link}");
    b.snap("portal-user-link").await;
    b.follow_link("Back to the customer").await;
    b.wait_for_text("till@harbour-bakery.example").await;

    b.follow_link("New site").await;
    b.wait_for_text("Environment").await;
    b.fill("name", "shop").await;
    b.fill("domains", "shop.harbour-bakery.example").await;
    b.fill("env", "API_KEY=very-secret-value").await;
    b.press("Create site").await;
    b.wait_for_text("Site shop created.").await;
    let page = b.body_text().await;
    assert!(page.contains("API_KEY"), "{page}");
    assert!(!page.contains("very-secret-value"), "environment values are masked: {page}");
    b.snap("site-detail").await;

    // A second site of the same customer, made through the API, for the search to leave out.
    let admin = app.admin().await;
    let customers = admin.get("/api/v1/customers").await;
    let customer_id = customers.body["items"][0]["id"].as_str().expect("customer id").to_owned();
    let res = admin.post("/api/v1/sites", &json!({"customer_id": customer_id, "name": "blog"})).await;
    assert_eq!(res.status, reqwest::StatusCode::CREATED, "{}", res.text);

    b.follow_link("Sites").await;
    b.wait_for_text("blog").await;
    b.fill("q", "sho").await;
    b.press("Filter").await;
    b.wait_for_text("Newest first.").await;
    assert!(b.path().await.ends_with("/admin/sites"));
    let rows = b.client.find_all(Locator::Css("tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "the search finds the one matching site");
    assert_eq!(rows[0].find(Locator::Css("td a")).await.expect("link").text().await.expect("text"), "shop");
    b.snap("site-search").await;

    b.follow_link("shop").await;
    b.wait_for_text("Operations and logs").await;
    b.follow_link("Delete site").await;
    b.wait_for_text("Delete the site shop?").await;
    b.snap("site-delete-confirm").await;
    b.press("Delete site").await;
    b.wait_for_text("Site deleted.").await;
    let page = b.body_text().await;
    assert!(page.contains("blog") && !page.contains("shop"), "{page}");
    b.snap("site-deleted").await;

    // The deletion went through the store: it is in the audit log.
    b.follow_link("Audit log").await;
    b.wait_for_text("site.delete").await;
    b.snap("audit-log").await;
    b.follow_link("Dashboard").await;
    b.wait_for_text("Recent activity").await;
    b.snap("dashboard-with-activity").await;

    b.press("Sign out").await;
    b.wait_for_text("You have signed out.").await;
    b.open("/admin/customers").await;
    b.wait_for_text("Sign in to the admin console").await;
    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn admin_manages_customers_and_sites_with_javascript() {
    admin_flow(Js::On).await;
}

#[tokio::test]
async fn admin_manages_customers_and_sites_without_javascript() {
    admin_flow(Js::Off).await;
}
