use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::support::{totp_code, totp_next_code, Client, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

fn session_cookie(res: &crate::support::Res) -> Option<String> {
    res.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("berth_session="))
        .map(str::to_owned)
}

#[tokio::test]
async fn login_me_logout() {
    let app = TestApp::spawn().await;
    let mut c = app.client();
    c.get("/api/v1/auth/me").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    let res = c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.body["user"]["role"], "admin");
    let cookie = session_cookie(&res).expect("session cookie set at login");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http public URL must not mark cookies Secure: {cookie}");

    let me = c.get("/api/v1/auth/me").await;
    assert_eq!(me.body["user"]["email"], ADMIN_EMAIL);
    // With BERTH_REDIS_URL set, the session lives in Redis (so every replica shares it).
    let sid = cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v.to_owned()).expect("id");
    assert!(app.redis_keys().await.contains(&format!("{}session:{sid}", app.redis_prefix)), "session not in Redis");
    assert_eq!(me.body["csrf_token"], res.body["csrf_token"]);

    assert_eq!(c.post("/api/v1/auth/logout", &json!({})).await.status, StatusCode::NO_CONTENT);
    c.get("/api/v1/auth/me").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!app.redis_keys().await.iter().any(|k| k.contains("session:")), "logout removes the session");
}

#[tokio::test]
async fn cookies_are_secure_behind_tls() {
    let app = TestApp::spawn_with(&[("BERTH_PUBLIC_URL", "https://panel.berth.test")]).await;
    let res = app.client().post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(session_cookie(&res).expect("cookie").contains("Secure"));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let c = app.client();
    let wrong = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": "nope-nope-nope"})).await;
    let unknown =
        c.post("/api/v1/auth/login", &json!({"email": "ghost@berth.test", "password": "nope-nope-nope"})).await;
    wrong.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn session_id_rotates_at_login_and_dies_at_logout() {
    let app = TestApp::spawn().await;
    // An anonymous session exists first (a fixation attempt would plant one).
    let c = app.client();
    let first = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    let first_cookie = session_cookie(&first).expect("cookie");
    let again = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    let second_cookie = session_cookie(&again).expect("cookie");
    assert_ne!(first_cookie.split(';').next(), second_cookie.split(';').next(), "login must issue a new session id");

    // Replaying the old id does not work (a jar-less client sends exactly that cookie).
    let fresh = reqwest::Client::new();
    let stale = Client::finish(
        fresh
            .get(format!("{}/api/v1/auth/me", app.base))
            .header("cookie", first_cookie.split(';').next().expect("pair")),
    )
    .await;
    stale.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    // After logout, the last id is dead too.
    let mut c2 = c.clone();
    c2.csrf = again.body["csrf_token"].as_str().map(str::to_owned);
    assert_eq!(c2.post("/api/v1/auth/logout", &json!({})).await.status, StatusCode::NO_CONTENT);
    let after = Client::finish(
        fresh
            .get(format!("{}/api/v1/auth/me", app.base))
            .header("cookie", second_cookie.split(';').next().expect("pair")),
    )
    .await;
    after.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn cookie_mutations_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    let mut c = app.admin().await;
    let body = json!({"email": "csrf@example.com", "company_name": "C", "plan": "starter"});
    let token = c.csrf.take().expect("csrf token");
    c.post("/api/v1/customers", &body).await.assert_problem(StatusCode::FORBIDDEN, "csrf");
    c.csrf = Some("0".repeat(64));
    c.post("/api/v1/customers", &body).await.assert_problem(StatusCode::FORBIDDEN, "csrf");
    // Reads need none.
    c.csrf = None;
    assert_eq!(c.get("/api/v1/customers").await.status, StatusCode::OK);
    // Nothing was created by the refused requests.
    assert_eq!(c.get("/api/v1/customers").await.body["items"].as_array().expect("items").len(), 0);
    c.csrf = Some(token);
    assert_eq!(c.post("/api/v1/customers", &body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn cross_site_login_is_refused() {
    let app = TestApp::spawn().await;
    let res = Client::finish(
        app.client()
            .http
            .post(format!("{}/api/v1/auth/login", app.base))
            .header("origin", "https://evil.example")
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    res.assert_problem(StatusCode::FORBIDDEN, "csrf");
}

#[tokio::test]
async fn totp_enrolment_and_login() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let enrol = admin.post("/api/v1/auth/totp/enroll", &json!({"password": ADMIN_PASSWORD})).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text);
    let uri = enrol.str("otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/Berth:"), "{uri}");

    admin
        .post("/api/v1/auth/totp/confirm", &json!({"code": "000000"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let ok = admin.post("/api/v1/auth/totp/confirm", &json!({"code": totp_code(&uri)})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["totp_enabled"], true);
    admin
        .post("/api/v1/auth/totp/enroll", &json!({"password": ADMIN_PASSWORD}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");

    // The secret is sealed at rest.
    let row = app
        .db
        .query_one(Statement::from_string(
            app.db.get_database_backend(),
            format!("SELECT totp_secret FROM users WHERE email = '{ADMIN_EMAIL}'"),
        ))
        .await
        .expect("query")
        .expect("row");
    let sealed: String = row.try_get("", "totp_secret").expect("column");
    let secret_b32 = uri.split("secret=").nth(1).expect("secret").split('&').next().expect("secret");
    assert!(!sealed.contains(secret_b32));

    let c = app.client();
    let no_code = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    no_code.assert_problem(StatusCode::UNAUTHORIZED, "totp-required");
    let bad = c
        .post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": "123456"}))
        .await;
    bad.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    // The code that confirmed the enrolment is used up; the next step's code works.
    let good = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": totp_next_code(&uri)}),
        )
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    // A wrong password with a right code is still just a wrong password.
    let wrong_pw = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": "wrong-wrong", "totp": totp_next_code(&uri)}),
        )
        .await;
    wrong_pw.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn login_is_rate_limited_per_account() {
    let app = TestApp::spawn().await;
    let c = app.client();
    for _ in 0..5 {
        let res = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": "guess-guess"})).await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Locked now, even with the right password.
    let res = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    let retry: u64 =
        res.headers.get("retry-after").expect("Retry-After").to_str().expect("ascii").parse().expect("seconds");
    assert!(retry > 0 && retry <= 900);
    // The counters live in Redis, under this app's prefix.
    assert!(app.redis_keys().await.iter().any(|k| k.contains("ratelimit:login:account:")));
}

#[tokio::test]
async fn login_is_rate_limited_per_ip_even_with_a_spoofed_forwarded_for() {
    let app = TestApp::spawn_with(&[("BERTH_LOGIN_LIMIT_PER_IP", "4")]).await;
    let c = app.client();
    for i in 0..4 {
        let res = Client::finish(
            c.http
                .post(format!("{}/api/v1/auth/login", app.base))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .json(&json!({"email": format!("user{i}@berth.test"), "password": "guess-guess"})),
        )
        .await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let res = Client::finish(
        c.http
            .post(format!("{}/api/v1/auth/login", app.base))
            .header("x-forwarded-for", "203.0.113.77")
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
}

#[tokio::test]
async fn forwarded_for_is_believed_from_trusted_proxies() {
    let app =
        TestApp::spawn_with(&[("BERTH_LOGIN_LIMIT_PER_IP", "2"), ("BERTH_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let c = app.client();
    let attempt = |ip: &'static str| {
        let c = c.clone();
        let base = app.base.clone();
        async move {
            Client::finish(
                c.http
                    .post(format!("{base}/api/v1/auth/login"))
                    .header("x-forwarded-for", ip)
                    .json(&json!({"email": "nobody@berth.test", "password": "guess-guess"})),
            )
            .await
            .status
        }
    };
    assert_eq!(attempt("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    // Another real client behind the same proxy is not punished for the first one.
    assert_eq!(attempt("198.51.100.2").await, StatusCode::UNAUTHORIZED);
    // The audit trail records the client, not the proxy.
    let mut admin = app.client();
    admin.extra_headers.push(("x-forwarded-for".into(), "192.0.2.10".into()));
    admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let audit = admin.get("/api/v1/audit?action=auth.login").await;
    assert_eq!(audit.body["items"][0]["ip"], "192.0.2.10");
}

#[tokio::test]
async fn old_password_hashes_are_upgraded_at_login() {
    let app = TestApp::spawn().await;
    use argon2::password_hash::{PasswordHasher, SaltString};
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).expect("params"),
    );
    let hash = weak
        .hash_password(ADMIN_PASSWORD.as_bytes(), &SaltString::generate(&mut rand::rngs::OsRng))
        .expect("hash")
        .to_string();
    let backend = app.db.get_database_backend();
    app.db
        .execute(Statement::from_sql_and_values(
            backend,
            "UPDATE users SET password_hash = $1 WHERE email = $2",
            [hash.into(), ADMIN_EMAIL.into()],
        ))
        .await
        .expect("update");
    app.admin().await;
    let row = app
        .db
        .query_one(Statement::from_sql_and_values(
            backend,
            "SELECT password_hash FROM users WHERE email = $1",
            [ADMIN_EMAIL.into()],
        ))
        .await
        .expect("query")
        .expect("row");
    let stored: String = row.try_get("", "password_hash").expect("hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let mut here = app.admin().await;
    let elsewhere = app.admin().await;
    let weak = here
        .post("/api/v1/auth/password", &json!({"current_password": ADMIN_PASSWORD, "new_password": "password1"}))
        .await;
    assert_eq!(weak.error_fields(), ["new_password"], "common passwords are refused: {}", weak.text);
    let short =
        here.post("/api/v1/auth/password", &json!({"current_password": ADMIN_PASSWORD, "new_password": "Ab1!"})).await;
    assert_eq!(short.error_fields(), ["new_password"]);
    let wrong = here
        .post(
            "/api/v1/auth/password",
            &json!({"current_password": "not-it-at-all", "new_password": "A-new-long-password-7"}),
        )
        .await;
    assert_eq!(wrong.error_fields(), ["current_password"]);

    let long = "L0ng-".repeat(20); // 100 characters are allowed
    let res =
        here.post("/api/v1/auth/password", &json!({"current_password": ADMIN_PASSWORD, "new_password": long})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    here.csrf = res.body["csrf_token"].as_str().map(str::to_owned);
    assert_eq!(here.get("/api/v1/auth/me").await.status, StatusCode::OK, "this session continues");
    assert_eq!(here.post("/api/v1/tokens", &json!({"name": "after"})).await.status, StatusCode::CREATED);
    elsewhere.get("/api/v1/auth/me").await.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    app.client().login(ADMIN_EMAIL, &long).await;
}

/// Enrols `c` (signed in with `password`) in TOTP and returns the otpauth URI; the current
/// step's code is used up by the confirmation.
async fn enable_totp(c: &Client, password: &str) -> String {
    enable_totp_with_code(c, password).await.0
}

/// Like [`enable_totp`], also returning the code the confirmation used (a new 30-second step
/// may begin before a test tries it again, so it must not be recomputed).
async fn enable_totp_with_code(c: &Client, password: &str) -> (String, String) {
    let enrol = c.post("/api/v1/auth/totp/enroll", &json!({"password": password})).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text);
    let uri = enrol.str("otpauth_uri");
    let code = totp_code(&uri);
    let ok = c.post("/api/v1/auth/totp/confirm", &json!({"code": code})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    (uri, code)
}

async fn audit_actions(admin: &Client, action: &str) -> Vec<serde_json::Value> {
    let res = admin.get(&format!("/api/v1/audit?action={action}")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    res.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_api_token_cannot_change_the_second_factor() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let token = admin.post("/api/v1/tokens", &json!({"name": "deploy"})).await.str("token");
    let api = Client::with_token(&app.base, &token);
    let body = json!({"password": ADMIN_PASSWORD});
    api.post("/api/v1/auth/totp/enroll", &body).await.assert_problem(StatusCode::FORBIDDEN, "session-required");
    api.post("/api/v1/auth/totp/confirm", &json!({"code": "123456"}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "session-required");
    api.post("/api/v1/auth/totp/disable", &body).await.assert_problem(StatusCode::FORBIDDEN, "session-required");
    assert_eq!(admin.get("/api/v1/auth/me").await.body["user"]["totp_enabled"], false);

    // In the session, enrolling needs the current password.
    let wrong = admin.post("/api/v1/auth/totp/enroll", &json!({"password": "not-my-password"})).await;
    wrong.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(wrong.error_fields(), ["password"]);
    let missing = admin.post("/api/v1/auth/totp/enroll", &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", missing.text);
    enable_totp(&admin, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (uri, confirmation_code) = enable_totp_with_code(&admin, ADMIN_PASSWORD).await;
    let c = app.client();
    let login = |code: String| {
        let c = c.clone();
        async move {
            c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": code})).await
        }
    };
    // The confirmation's code does not sign anyone in afterwards.
    login(confirmation_code).await.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let next = totp_next_code(&uri);
    assert_eq!(login(next.clone()).await.status, StatusCode::OK);
    // Seen once, refused the second time (a code read over someone's shoulder, or replayed).
    login(next).await.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
}

#[tokio::test]
async fn turning_off_the_second_factor_needs_the_password_and_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .post("/api/v1/auth/totp/disable", &json!({"password": ADMIN_PASSWORD}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    enable_totp(&admin, ADMIN_PASSWORD).await;
    let wrong = admin.post("/api/v1/auth/totp/disable", &json!({"password": "not-my-password"})).await;
    assert_eq!(wrong.error_fields(), ["password"], "{}", wrong.text);
    let off = admin.post("/api/v1/auth/totp/disable", &json!({"password": ADMIN_PASSWORD})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["totp_enabled"], false);
    app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(audit_actions(&admin, "user.totp_disable").await.len(), 1);
}

#[tokio::test]
async fn an_admin_resets_the_second_factor_of_a_locked_out_customer_user() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "lost-phone@example.com", "starter").await;
    let user = app.customer_user(&admin, &customer, "owner@lost-phone.example").await;
    enable_totp(&user, "Portal-Password-42").await;
    let user_id = user.get("/api/v1/auth/me").await.body["user"]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/customers/{customer}/users/{user_id}/totp/reset");

    // The customer can no longer sign in without their phone.
    let c = app.client();
    let locked = c
        .post("/api/v1/auth/login", &json!({"email": "owner@lost-phone.example", "password": "Portal-Password-42"}))
        .await;
    locked.assert_problem(StatusCode::UNAUTHORIZED, "totp-required");

    // Not with a token, not with a wrong password, not by the customer, not for another customer.
    let token = admin.post("/api/v1/tokens", &json!({"name": "ops"})).await.str("token");
    Client::with_token(&app.base, &token)
        .post(&path, &json!({"password": ADMIN_PASSWORD}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "session-required");
    let wrong = admin.post(&path, &json!({"password": "not-my-password"})).await;
    assert_eq!(wrong.error_fields(), ["password"], "{}", wrong.text);
    user.post(&path, &json!({"password": "Portal-Password-42"}))
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let other = app.customer(&admin, "other@example.com", "starter").await;
    admin
        .post(&format!("/api/v1/customers/{other}/users/{user_id}/totp/reset"), &json!({"password": ADMIN_PASSWORD}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    let reset = admin.post(&path, &json!({"password": ADMIN_PASSWORD})).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(reset.body["totp_enabled"], false);
    app.client().login("owner@lost-phone.example", "Portal-Password-42").await;
    let entries = audit_actions(&admin, "user.totp_reset").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"], ADMIN_EMAIL);
    assert_eq!(entries[0]["target_id"], user_id.as_str());
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited_like_sign_in() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let change = |current: &str| json!({"current_password": current, "new_password": "A-new-long-password-7"});
    for _ in 0..5 {
        let res = admin.post("/api/v1/auth/password", &change("not-it-at-all")).await;
        assert_eq!(res.error_fields(), ["current_password"], "{}", res.text);
    }
    // Limited now, even with the right password: guessing it through this form is as slow as
    // guessing it at sign-in.
    let res = admin.post("/api/v1/auth/password", &change(ADMIN_PASSWORD)).await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    assert!(res.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn successful_sign_ins_do_not_count_toward_the_address_limit() {
    let app = TestApp::spawn_with(&[("BERTH_LOGIN_LIMIT_PER_IP", "3")]).await;
    for _ in 0..6 {
        app.client().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }
    // Failures still do.
    let c = app.client();
    for _ in 0..3 {
        let res = c.post("/api/v1/auth/login", &json!({"email": "nobody@berth.test", "password": "guess-guess"})).await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let res = c.post("/api/v1/auth/login", &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    res.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
}

#[tokio::test]
async fn failed_sign_ins_are_audited_with_their_reason() {
    let app = TestApp::spawn_with(&[("BERTH_LOGIN_LIMIT_PER_ACCOUNT", "2")]).await;
    let admin = app.admin().await;
    let uri = enable_totp(&admin, ADMIN_PASSWORD).await;
    let c = app.client();
    let attempt = |email: &str, password: &str, totp: Option<&str>| {
        let body = json!({"email": email, "password": password, "totp": totp});
        let c = c.clone();
        async move { c.post("/api/v1/auth/login", &body).await }
    };
    attempt("nobody@berth.test", "guess-guess", None).await;
    attempt(ADMIN_EMAIL, ADMIN_PASSWORD, None).await; // code missing
    attempt(ADMIN_EMAIL, ADMIN_PASSWORD, Some("000000")).await; // code wrong
    attempt(ADMIN_EMAIL, "guess-guess", None).await; // password wrong: the account is limited now
    let limited = attempt(ADMIN_EMAIL, ADMIN_PASSWORD, Some(&totp_next_code(&uri))).await;
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate-limited");

    let entries = audit_actions(&admin, "auth.login_failed").await;
    let mut reasons: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["details"]["email"].as_str().unwrap_or("").to_owned(),
                e["details"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    reasons.sort();
    let expected = [
        (ADMIN_EMAIL, "bad_credentials"),
        (ADMIN_EMAIL, "limited"),
        (ADMIN_EMAIL, "totp_missing"),
        (ADMIN_EMAIL, "totp_wrong"),
        ("nobody@berth.test", "bad_credentials"),
    ];
    let mut expected: Vec<(String, String)> = expected.iter().map(|(e, r)| (e.to_string(), r.to_string())).collect();
    expected.sort();
    assert_eq!(reasons, expected);
    assert!(entries.iter().all(|e| e["ip"].as_str().is_some()), "the address is recorded");
}

/// The peak resident memory of a process, in kB (`VmHWM` in /proc/<pid>/status).
#[cfg(target_os = "linux")]
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// A burst of parallel sign-ins once took `berth` from 32 MB to 188 MB for good: one argon2id
/// (19 MiB) per request at once, each on its own blocking thread. Hashing now runs on a small
/// fixed pool, so the real binary's peak memory grows by less than 64 MiB through three bursts
/// of 16 (one hash per pool thread; sixteen at once would be over 300 MiB), with the parameters
/// unchanged (checked by `old_password_hashes_are_upgraded_at_login`). The bound is on the growth,
/// not the total: the binary's own start-up peak depends on what it links.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_burst_of_sign_ins_keeps_memory_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = crate::cli::free_port();
    let mut berth = crate::cli::start_serve_with(
        dir.path(),
        port,
        &[
            ("BERTH_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL),
            ("BERTH_LOGIN_LIMIT_PER_IP", "1000"),
            ("BERTH_LOG", "warn"),
        ],
    )
    .await;
    let pid = berth.child.id().expect("pid");
    let base = format!("http://127.0.0.1:{port}");
    let before = peak_rss_kb(pid);
    for _ in 0..3 {
        let logins: Vec<_> = (0..16)
            .map(|_| {
                let base = base.clone();
                tokio::spawn(async move {
                    let mut c = Client::new(&base);
                    c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
                })
            })
            .collect();
        for login in logins {
            login.await.expect("login task");
        }
    }
    let peak = peak_rss_kb(pid);
    eprintln!("berth peak RSS: {before} kB before the bursts, {peak} kB after 3 x 16 parallel sign-ins");
    assert!(peak.saturating_sub(before) < 64 * 1024, "peak RSS {peak} kB (from {before} kB) under a sign-in burst");
    berth.child.kill().await.expect("stop");
}
