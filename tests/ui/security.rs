//! An administrator helps locked-out customers from the console: clears the sign-in limit that
//! holds back an account, and turns off the second factor of a user who lost their phone,
//! confirming with their own password. Sign-ins do not crowd the dashboard's recent activity.

use reqwest::StatusCode;
use serde_json::json;

use super::{Browser, Js};
use crate::support::{totp_code, TestApp, ADMIN_PASSWORD};

const USER: &str = "owner@locked-out.example";
const USER_PASSWORD: &str = "Portal-Password-42";

async fn security_flow(js: Js) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "locked-out@example.com", "starter").await;
    let user = app.customer_user(&admin, &customer, USER).await;
    let enrol = user.post("/api/v1/auth/totp/enroll", &json!({"password": USER_PASSWORD})).await;
    let uri = enrol.str("otpauth_uri");
    user.post("/api/v1/auth/totp/confirm", &json!({"code": totp_code(&uri)})).await;
    // Five wrong passwords lock the account.
    let c = app.client();
    for _ in 0..5 {
        c.post("/api/v1/auth/login", &json!({"email": USER, "password": "guess-guess"})).await;
    }
    let login = json!({"email": USER, "password": USER_PASSWORD});
    c.post("/api/v1/auth/login", &login).await.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    for _ in 0..5 {
        app.client().login(crate::support::ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }

    let mut b = Browser::start(&app, "security", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    let dashboard = b.body_text().await;
    assert!(dashboard.contains("customer.create"), "changes are listed:\n{dashboard}");
    assert!(!dashboard.contains("auth.login"), "sign-ins do not flood recent activity:\n{dashboard}");
    b.snap("dashboard").await;

    b.follow_link("Sign-in limits").await;
    b.wait_for_text("Address or e-mail").await;
    b.fill("subject", "not a subject").await;
    b.press("Clear the limit").await;
    b.wait_for_text("is neither an IP address nor an e-mail address").await;
    b.fill("subject", USER).await;
    b.press("Clear the limit").await;
    b.wait_for_text(&format!("The sign-in limit of {USER} is cleared.")).await;
    b.snap("limit-cleared").await;
    // The password works again; the code is still asked for.
    c.post("/api/v1/auth/login", &login).await.assert_problem(StatusCode::UNAUTHORIZED, "totp-required");

    b.open(&format!("/admin/customers/{customer}")).await;
    b.wait_for_text(USER).await;
    b.follow_link("Reset").await;
    b.wait_for_text("Turn off two-factor authentication for").await;
    b.snap("confirm-reset").await;
    b.fill("password", "not-my-password").await;
    b.press("Turn off two-factor authentication").await;
    b.wait_for_text("is not your current password").await;
    b.fill("password", ADMIN_PASSWORD).await;
    b.press("Turn off two-factor authentication").await;
    b.wait_for_text(&format!("Two-factor authentication is off for {USER}.")).await;
    b.snap("reset-done").await;
    assert_eq!(c.post("/api/v1/auth/login", &login).await.status, StatusCode::OK);

    b.follow_link("Audit log").await;
    b.wait_for_text("user.totp_reset").await;
    let audit = b.body_text().await;
    assert!(audit.contains("auth.limit_clear") && audit.contains("auth.login_failed"), "{audit}");
    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_clears_a_limit_and_resets_a_second_factor_with_javascript() {
    security_flow(Js::On).await;
}

#[tokio::test]
async fn an_admin_clears_a_limit_and_resets_a_second_factor_without_javascript() {
    security_flow(Js::Off).await;
}
