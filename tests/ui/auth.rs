//! The sign-in pages over plain HTTP (no browser needed): a visitor who is not signed in gets
//! no session, only a signed CSRF cookie for the form; the session starts at sign-in.

use reqwest::StatusCode;

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The hidden `csrf_token` of the page's form.
fn form_token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("the form has a CSRF field") + 25;
    html[at..].split('"').next().expect("value").to_owned()
}

fn session_keys(keys: &[String]) -> usize {
    keys.iter().filter(|k| k.contains("session:")).count()
}

#[tokio::test]
async fn visiting_the_sign_in_page_creates_no_session() {
    let app = TestApp::spawn().await;
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for path in ["/admin/login", "/portal/login"] {
        for _ in 0..50 {
            let res = anonymous.get(format!("{}{path}", app.base)).send().await.expect("GET");
            assert_eq!(res.status(), StatusCode::OK);
            let cookies = set_cookies(&res);
            assert!(!cookies.iter().any(|c| c.starts_with("berth_session=")), "{path} set a session: {cookies:?}");
            assert!(cookies.iter().any(|c| c.starts_with("berth_login_csrf=") && c.contains("HttpOnly")));
        }
    }
    assert_eq!(session_keys(&app.redis_keys().await), 0, "no session was stored for 100 visits");

    // The form still works, and signing in starts the one session.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = browser.get(format!("{}/admin/login", app.base)).send().await.expect("GET").text().await.expect("body");
    let token = form_token(&page);
    let form = [("csrf_token", token.as_str()), ("email", ADMIN_EMAIL), ("password", "wrong-password"), ("totp", "")];
    let wrong = browser.post(format!("{}/admin/login", app.base)).form(&form).send().await.expect("POST");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!set_cookies(&wrong).iter().any(|c| c.starts_with("berth_session=")));
    let form = [("csrf_token", token.as_str()), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("totp", "")];
    let ok = browser.post(format!("{}/admin/login", app.base)).form(&form).send().await.expect("POST");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&ok);
    assert!(cookies.iter().any(|c| c.starts_with("berth_session=")), "{cookies:?}");
    assert!(
        cookies.iter().any(|c| c.starts_with("berth_login_csrf=;")
            || c.starts_with("berth_login_csrf=\"\"")
            || c.starts_with("berth_login_csrf=") && c.contains("Max-Age=0")),
        "the spent token is cleared: {cookies:?}"
    );
    assert_eq!(session_keys(&app.redis_keys().await), 1);
    let dashboard = browser.get(format!("{}/admin", app.base)).send().await.expect("GET");
    assert_eq!(dashboard.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_sign_in_form_needs_its_signed_cookie() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let page = client.get(format!("{}/portal/login", app.base)).send().await.expect("GET");
    let cookie = set_cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("berth_login_csrf="))
        .expect("CSRF cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let token = form_token(&page.text().await.expect("body"));
    let form = [("csrf_token", token.as_str()), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("totp", "")];
    let post = |cookie: Option<String>| {
        let mut req = client.post(format!("{}/portal/login", app.base)).form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    // Without the cookie, or with a cookie whose signature is not ours (planted by a neighbour
    // site), the form is refused.
    assert_eq!(post(None).await.expect("POST").status(), StatusCode::FORBIDDEN);
    let forged = format!("berth_login_csrf={token}.{}", "0".repeat(64));
    assert_eq!(post(Some(forged)).await.expect("POST").status(), StatusCode::FORBIDDEN);
    assert_eq!(post(Some(cookie)).await.expect("POST").status(), StatusCode::SEE_OTHER);
}
