//! Security headers (`server/src/http/security_headers.rs`): every page refuses to be framed and
//! sniffed, and a page that shows a secret once is never cached.

use reqwest::StatusCode;

use crate::support::{Res, TestApp};

fn header<'a>(res: &'a Res, name: &str) -> &'a str {
    res.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header on {}", res.text))
}

fn assert_locked_down(res: &Res) {
    let csp = header(res, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert_eq!(header(res, "x-frame-options"), "DENY");
    assert_eq!(header(res, "x-content-type-options"), "nosniff");
    assert_eq!(header(res, "referrer-policy"), "same-origin");
}

#[tokio::test]
async fn every_page_refuses_framing_and_sniffing() {
    let app = TestApp::spawn().await;
    let anonymous = app.client();
    for path in ["/", "/admin/login", "/portal/login", "/set-password?token=nothing", "/no/such/page"] {
        let res = anonymous.get(path).await;
        assert!(res.content_type().starts_with("text/html"), "{path}: {}", res.content_type());
        assert_locked_down(&res);
        assert_eq!(header(&res, "cache-control"), "no-store", "{path}");
    }
    // A delete confirmation page, the page a framing site would most like to trick a click on.
    let admin = app.admin().await;
    let customer = app.customer(&admin, "frame@example.com", "starter").await;
    let confirm = admin.get(&format!("/admin/customers/{customer}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert!(confirm.text.contains("<form"), "{}", confirm.text);
    assert_locked_down(&confirm);
    // The API's answers too; the stylesheet keeps its own caching.
    let api = admin.get("/api/v1/auth/me").await;
    assert_locked_down(&api);
    assert_eq!(header(&api, "cache-control"), "no-store");
    let css = anonymous.get("/assets/berth.css").await;
    assert_eq!(header(&css, "cache-control"), "public, max-age=300");
    assert_eq!(header(&css, "x-content-type-options"), "nosniff");
}

/// POSTs a console form as the browser does (same origin, the session's CSRF token).
async fn post_form(app: &TestApp, client: &crate::support::Client, path: &str, fields: &[(&str, &str)]) -> Res {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("csrf_token", client.csrf.as_deref().expect("signed in"));
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    crate::support::Client::finish(
        client
            .http
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &app.base)
            .body(form.finish()),
    )
    .await
}

#[tokio::test]
async fn pages_that_show_a_secret_once_are_not_cached() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // A new API token, shown once.
    let token = post_form(&app, &admin, "/admin/account/tokens", &[("name", "ci")]).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert!(token.text.contains("berth_"), "the page shows the token: {}", token.text);
    assert_eq!(header(&token, "cache-control"), "no-store");
    assert_locked_down(&token);
    // A portal user's one-time set-password link, shown once.
    let customer = app.customer(&admin, "secret-once@example.com", "starter").await;
    let link =
        post_form(&app, &admin, &format!("/admin/customers/{customer}/users"), &[("email", "owner@example.com")]).await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    assert!(link.text.contains("/set-password?token="), "the page shows the link: {}", link.text);
    assert_eq!(header(&link, "cache-control"), "no-store");
    assert_locked_down(&link);
}
