//! TOTP enrolment in the browser (QR code as inline SVG, confirmed with a code), then signing
//! in with a code.

use fantoccini::Locator;

use super::{Browser, Js};
use crate::support::{totp_code, totp_next_code, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

async fn totp_flow(js: Js) {
    let app = TestApp::spawn().await;
    let mut b = Browser::start(&app, "totp", js).await;
    b.sign_in_as_admin().await;
    b.assert_js_state().await;
    b.follow_link("Account").await;
    b.wait_for_text("Two-factor authentication").await;
    b.snap("account").await;
    // Setting it up needs the current password.
    b.fill("password", "not-my-password").await;
    b.press("Set up two-factor authentication").await;
    b.wait_for_text("is not your current password").await;
    b.snap("totp-wrong-password").await;
    b.fill("password", ADMIN_PASSWORD).await;
    b.press("Set up two-factor authentication").await;
    b.wait_for_text("Scan this code").await;
    assert!(b.exists("figure.qr svg").await, "the QR code is inline SVG");
    b.snap("totp-qr").await;
    let uri = b.text_of("#otpauth-uri").await;
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");

    b.fill("code", "000000").await;
    b.press("Turn on two-factor authentication").await;
    b.wait_for_text("Please correct the fields marked below.").await;
    b.snap("totp-wrong-code").await;
    // Kept: a 30-second step may pass before it is tried again below.
    let confirmation_code = totp_code(&uri);
    b.fill("code", &confirmation_code).await;
    b.press("Turn on two-factor authentication").await;
    b.wait_for_text("Two-factor authentication is on.").await;
    b.snap("totp-on").await;

    b.press("Sign out").await;
    b.wait_for_text("You have signed out.").await;
    b.sign_in("/admin/login", ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
    b.wait_for_text("Enter the 6-digit code").await;
    let field = b.client.find(Locator::Css("#field-totp")).await.expect("totp field");
    assert_eq!(field.attr("aria-invalid").await.expect("attr").as_deref(), Some("true"));
    b.snap("code-required").await;
    // The code that turned it on is used up; the next one signs in.
    b.sign_in("/admin/login", ADMIN_EMAIL, ADMIN_PASSWORD, Some(&confirmation_code)).await;
    b.wait_for_text("This is not the current code").await;
    b.sign_in("/admin/login", ADMIN_EMAIL, ADMIN_PASSWORD, Some(&totp_next_code(&uri))).await;
    b.wait_for_text("Recent activity").await;
    assert_eq!(b.path().await, "/admin");
    b.snap("signed-in-with-code").await;

    // Turning it off needs the password too.
    b.follow_link("Account").await;
    b.wait_for_text("Turn off two-factor authentication").await;
    b.fill("password", ADMIN_PASSWORD).await;
    b.press("Turn off two-factor authentication").await;
    b.wait_for_text("Two-factor authentication is off.").await;
    b.snap("totp-off").await;
    b.close().await;
    app.stop().await;
}

#[tokio::test]
async fn totp_enrolment_then_sign_in_with_a_code_with_javascript() {
    totp_flow(Js::On).await;
}

#[tokio::test]
async fn totp_enrolment_then_sign_in_with_a_code_without_javascript() {
    totp_flow(Js::Off).await;
}
