//! The signed signup webhook: every way in is checked, and a rejected call creates nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{signed_signup, Client, Res, TestApp};

const SECRET: &str = "whsec-test-current-0123456789";
const PREVIOUS: &str = "whsec-test-previous-0123456789";

/// With workers: each accepted signup's onboarding runs (and must finish) within the test.
async fn app() -> TestApp {
    TestApp::spawn_with_workers(&[
        ("BERTH_WEBHOOK_SECRET", SECRET),
        ("BERTH_WEBHOOK_SECRET_PREVIOUS", PREVIOUS),
        ("BERTH_BASE_DOMAIN", "hosting.test"),
    ])
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>, content_type: &str) -> Res {
    let mut req = app
        .client()
        .http
        .post(format!("{}/api/v1/webhooks/signup", app.base))
        .header("content-type", content_type)
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("Berth-Signature", sig);
    }
    Client::finish(req).await
}

async fn signed(app: &TestApp, body: &Value) -> Res {
    app.signup_webhook(SECRET, body).await
}

fn signup(id: &str, email: &str, sub: &str) -> Value {
    json!({"id": id, "email": email, "company_name": "Shop & Co", "plan": "starter", "subdomain": sub})
}

async fn counts(app: &TestApp) -> (usize, usize) {
    app.wait_for_idle_queue().await;
    let admin = app.admin().await;
    let customers = admin.get("/api/v1/customers?limit=200").await.body["items"].as_array().map_or(0, Vec::len);
    let sites = admin.get("/api/v1/sites?limit=200").await.body["items"].as_array().map_or(0, Vec::len);
    (customers, sites)
}

#[tokio::test]
async fn accepted_signup_creates_customer_user_and_site_once() {
    let app = app().await;
    let res = signed(&app, &signup("evt_1", "Owner@Shop.Example", "shop")).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["host"], "shop.hosting.test");
    let customer = res.str("customer_id");
    assert!(res.str("status_url").starts_with(crate::support::PUBLIC_URL));

    let admin = app.admin().await;
    let c = admin.get(&format!("/api/v1/customers/{customer}")).await;
    assert_eq!(c.body["email"], "owner@shop.example");
    assert_eq!(c.body["plan"], "starter");
    let users = admin.get(&format!("/api/v1/customers/{customer}/users")).await;
    assert_eq!(users.body[0]["email"], "owner@shop.example");
    assert_eq!(users.body[0]["has_password"], false);
    let site = admin.get(&format!("/api/v1/sites/{}", res.str("site_id"))).await;
    assert_eq!(site.body["domains"], json!(["shop.hosting.test"]));
    assert_eq!(site.body["name"], "shop");

    // A replay answers the same and creates nothing; so does a replay signed with the old secret.
    let again = signed(&app, &signup("evt_1", "Owner@Shop.Example", "shop")).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, res.body);
    let raw = signup("evt_1", "owner@shop.example", "shop").to_string().into_bytes();
    let old = deliver(&app, &raw, Some(berth_core::webhook::sign(PREVIOUS, now(), &raw)), "application/json").await;
    assert_eq!(old.body, res.body);
    assert_eq!(counts(&app).await, (1, 1));

    let audit = admin.get("/api/v1/audit?actor=signup-webhook").await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["customer.create", "user.create", "site.create"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_create_one_customer() {
    let app = app().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let body = signup("evt_race", "race@shop.example", "race");
        let base = app.base.clone();
        tasks.push(tokio::spawn(async move { signed_signup(&base, SECRET, &body).await }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let res = t.await.expect("task");
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
        bodies.push(res.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every delivery gets the first answer");
    assert_eq!(counts(&app).await, (1, 1));
}

#[tokio::test]
async fn fifty_concurrent_signups_are_all_accepted_once() {
    let app = app().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let body = signup(&format!("evt_{i}"), &format!("owner{i}@shops.example"), &format!("shop{i}"));
        let base = app.base.clone();
        tasks.push(tokio::spawn(async move { signed_signup(&base, SECRET, &body).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::ACCEPTED);
    }
    assert_eq!(counts(&app).await, (50, 50));
    // Every one was onboarded, once: 50 succeeded runs, no failed ones, 50 "onboarded" entries.
    let admin = app.admin().await;
    let runs = admin.get("/api/v1/flows?kind=onboarding&limit=200").await;
    let states: Vec<&str> =
        runs.body["items"].as_array().expect("items").iter().filter_map(|r| r["state"].as_str()).collect();
    assert_eq!(states.len(), 50, "{}", runs.text);
    assert!(states.iter().all(|s| *s == "succeeded"), "{states:?}");
    let onboarded = admin.get("/api/v1/audit?action=customer.onboarded&limit=200").await;
    assert_eq!(onboarded.body["items"].as_array().expect("items").len(), 50);
}

#[tokio::test]
async fn signatures_are_enforced() {
    let app = app().await;
    let body = signup("evt_sig", "sig@shop.example", "sig");
    let raw = body.to_string().into_bytes();
    for sig in [
        None,
        Some("garbage".to_owned()),
        Some(berth_core::webhook::sign("wrong-secret-0123456789", now(), &raw)),
        Some(berth_core::webhook::sign(SECRET, now() - 360, &raw)),
        Some(berth_core::webhook::sign(SECRET, now(), b"{\"other\":1}")),
        Some(berth_core::webhook::sign("", now(), &raw)),
    ] {
        let res = deliver(&app, &raw, sig, "application/json").await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "signature");
    }
    // Only JSON is accepted, signed or not.
    let res = deliver(&app, &raw, Some(berth_core::webhook::sign(SECRET, now(), &raw)), "text/plain").await;
    res.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    assert_eq!(counts(&app).await, (0, 0));
}

#[tokio::test]
async fn without_a_secret_the_hook_is_closed() {
    let app = TestApp::spawn().await;
    let raw = signup("evt_x", "x@shop.example", "x").to_string().into_bytes();
    for sig in [
        None,
        Some(berth_core::webhook::sign("", now(), &raw)),
        Some(berth_core::webhook::sign("anything-at-all-123", now(), &raw)),
    ] {
        deliver(&app, &raw, sig, "application/json")
            .await
            .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    assert_eq!(counts(&app).await, (0, 0));
}

#[tokio::test]
async fn invalid_signups_name_the_field_and_create_nothing() {
    let app = app().await;
    let malformed = b"{\"id\": ".to_vec();
    deliver(&app, &malformed, Some(berth_core::webhook::sign(SECRET, now(), &malformed)), "application/json")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"id": "e1", "email": "not-an-email", "company_name": "C", "plan": "starter", "subdomain": "a"}),
            "email",
        ),
        (
            json!({"id": "e2", "email": "a@b.example", "company_name": "", "plan": "starter", "subdomain": "a"}),
            "company_name",
        ),
        (json!({"id": "e3", "email": "a@b.example", "company_name": "C", "plan": "gold", "subdomain": "a"}), "plan"),
        (
            json!({"id": "e4", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a;b"}),
            "subdomain",
        ),
        (
            json!({"id": "e5", "email": "a@b.example", "company_name": "C", "plan": "starter", "domain": "$(id).example"}),
            "domain",
        ),
        (json!({"id": "e6", "email": "a@b.example", "company_name": "C", "plan": "starter"}), "subdomain"),
        (
            json!({"id": "e7", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a", "domain": "a.example"}),
            "domain",
        ),
        (
            json!({"id": "e8", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a", "template": "Bad Image"}),
            "template",
        ),
        (
            json!({"id": "bad id!", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a"}),
            "id",
        ),
        (json!({"email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a"}), "id"),
        // A caller cannot set ids, prices or statuses.
        (
            json!({"id": "e9", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a", "status": "active"}),
            "status",
        ),
        (
            json!({"id": "e10", "email": "a@b.example", "company_name": "C", "plan": "starter", "subdomain": "a", "customer_id": "x"}),
            "customer_id",
        ),
    ];
    for (body, field) in cases {
        let res = signed(&app, &body).await;
        res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert!(res.error_fields().contains(&field.to_owned()), "{field}: {}", res.text);
    }
    assert_eq!(counts(&app).await, (0, 0));
}

#[tokio::test]
async fn taken_email_or_host_is_a_conflict_that_creates_nothing() {
    let app = app().await;
    assert_eq!(signed(&app, &signup("evt_a", "first@shop.example", "taken")).await.status, StatusCode::ACCEPTED);
    signed(&app, &signup("evt_b", "first@shop.example", "other"))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let res = signed(&app, &signup("evt_c", "second@shop.example", "taken")).await;
    res.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(res.text.contains("taken.hosting.test"));
    // An own domain works too, and is held to the same rule.
    let own = json!({"id": "evt_d", "email": "third@shop.example", "company_name": "T", "plan": "pro", "domain": "www.third.example"});
    let res = signed(&app, &own).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    assert_eq!(res.body["host"], "www.third.example");
    assert_eq!(counts(&app).await, (2, 2));
}

/// A timestamp near `i64::MIN` once wrapped the tolerance check (`(now - t).abs()`) and passed
/// with a valid HMAC; every far-off timestamp is stale, however it is signed.
#[tokio::test]
async fn extreme_timestamps_are_stale_even_when_signed() {
    let app = app().await;
    let raw = signup("evt_time", "time@shop.example", "time").to_string().into_bytes();
    for t in [i64::MIN, i64::MIN + 1, i64::MIN + now(), i64::MAX, -1, 0] {
        let res = deliver(&app, &raw, Some(berth_core::webhook::sign(SECRET, t, &raw)), "application/json").await;
        res.assert_problem(StatusCode::UNAUTHORIZED, "signature");
        assert!(res.text.contains("5 minutes"), "t={t}: {}", res.text);
    }
    assert_eq!(counts(&app).await, (0, 0));
}

/// `{"plan":"starter","plan":"business"}` is refused, not read as its last value: the signer,
/// a proxy and Berth must not disagree on what a signed body says.
#[tokio::test]
async fn duplicate_keys_are_refused_and_create_nothing() {
    let app = app().await;
    let bodies = [
        r#"{"id":"evt_dup","email":"dup@shop.example","company_name":"Dup","plan":"starter","plan":"business","subdomain":"dup"}"#,
        r#"{"id":"evt_dup","id":"evt_dup2","email":"dup@shop.example","company_name":"Dup","plan":"starter","subdomain":"dup"}"#,
    ];
    for body in bodies {
        let raw = body.as_bytes().to_vec();
        let res = deliver(&app, &raw, Some(berth_core::webhook::sign(SECRET, now(), &raw)), "application/json").await;
        res.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
        assert!(res.body["detail"].as_str().unwrap_or("").contains("duplicate key"), "{}", res.text);
    }
    assert_eq!(counts(&app).await, (0, 0));
}

/// A body over the limit is a problem+json 413 like every other error, not axum's text/plain.
#[tokio::test]
async fn an_oversized_body_is_a_problem() {
    let app = app().await;
    let mut big = signup("evt_big", "big@shop.example", "big");
    big["company_name"] = Value::String("x".repeat(1024 * 1024 + 16));
    let raw = big.to_string().into_bytes();
    let res = deliver(&app, &raw, Some(berth_core::webhook::sign(SECRET, now(), &raw)), "application/json").await;
    res.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    assert_eq!(counts(&app).await, (0, 0));
}

/// The statements PostgreSQL itself counted in this test's database whose text contains `part`
/// (`pg_stat_statements`, preloaded by scripts/test.sh): (query, calls).
async fn statements(app: &TestApp, part: &str) -> Vec<(String, i64)> {
    use sea_orm::ConnectionTrait;
    let backend = app.db.get_database_backend();
    let rows = app
        .db
        .query_all(sea_orm::Statement::from_sql_and_values(
            backend,
            "SELECT query, CAST(calls AS BIGINT) AS calls FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE $1",
            [format!("%{part}%").into()],
        ))
        .await
        .expect("pg_stat_statements (scripts/test.sh preloads it)");
    rows.iter().map(|r| (r.try_get("", "query").expect("query"), r.try_get("", "calls").expect("calls"))).collect()
}

/// A signup is BEGIN, one statement that claims the event and reads the conflicts, one statement
/// that writes every row (customer, user, site, domain, audit, flow run, steps, driver job and the
/// workers' wake-up), and COMMIT: no statement per table.
#[tokio::test]
async fn a_signup_writes_every_row_in_one_statement() {
    use sea_orm::ConnectionTrait;
    let app = app().await;
    app.db
        .execute(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements".to_owned(),
        ))
        .await
        .expect("pg_stat_statements is preloaded by scripts/test.sh");
    for i in 0..3 {
        let res = signed(&app, &signup(&format!("evt_rt{i}"), &format!("rt{i}@shop.example"), &format!("rt{i}"))).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    }
    let writes = statements(&app, "INSERT INTO \"customers\"").await;
    assert_eq!(writes.len(), 1, "one statement inserts customers: {writes:?}");
    let (query, calls) = &writes[0];
    assert_eq!(*calls, 3, "{query}");
    for table in [
        "\"users\"",
        "\"sites\"",
        "\"site_domains\"",
        "\"audit_log\"",
        "\"flow_runs\"",
        "\"flow_steps\"",
        "\"jobs\"",
        "pg_notify",
    ] {
        assert!(query.contains(table), "the signup's write has no {table}: {query}");
    }
    let claims = statements(&app, "INSERT INTO \"webhook_events\"").await;
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert!(claims[0].0.contains("max_sites") && claims[0].1 == 3, "the claim reads the conflicts: {claims:?}");
    assert_eq!(counts(&app).await, (3, 3));
}

/// The embedded default: on SQLite the claim with its conflict reads, and every row of a signup,
/// are each sent as one string of statements. Everything is written once, a replay gets the
/// first answer, conflicts are named, and concurrent signups (one connection, one writer) are
/// all accepted once.
#[tokio::test]
async fn signups_on_sqlite_write_every_row_once() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("berth.db").display());
    let app = TestApp::spawn_with_workers(&[
        ("BERTH_DATABASE_URL", &url),
        ("BERTH_WEBHOOK_SECRET", SECRET),
        ("BERTH_BASE_DOMAIN", "hosting.test"),
    ])
    .await;
    assert_eq!(app.db.get_database_backend(), sea_orm::DbBackend::Sqlite);

    let res = signed(&app, &signup("evt_lite", "Owner@Lite.Example", "lite")).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
    let again = signed(&app, &signup("evt_lite", "owner@lite.example", "lite")).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body, res.body, "a replay gets the first answer");
    signed(&app, &signup("evt_lite_b", "owner@lite.example", "other"))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let taken = signed(&app, &signup("evt_lite_c", "second@lite.example", "lite")).await;
    taken.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(taken.text.contains("lite.hosting.test"), "{}", taken.text);
    signed(
        &app,
        &json!({"id": "evt_lite_d", "email": "d@lite.example", "company_name": "D", "plan": "gold", "subdomain": "d"}),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    let admin = app.admin().await;
    let customer = res.str("customer_id");
    let users = admin.get(&format!("/api/v1/customers/{customer}/users")).await;
    assert_eq!(users.body[0]["email"], "owner@lite.example");
    let site = admin.get(&format!("/api/v1/sites/{}", res.str("site_id"))).await;
    assert_eq!(site.body["domains"], json!(["lite.hosting.test"]));
    let audit = admin.get("/api/v1/audit?actor=signup-webhook").await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["customer.create", "user.create", "site.create"] {
        assert_eq!(actions.iter().filter(|x| **x == a).count(), 1, "{actions:?}");
    }

    let mut tasks = Vec::new();
    for i in 0..30 {
        // Every event twice, at once: each is accepted once and both deliveries get its answer.
        for _ in 0..2 {
            let body = signup(&format!("evt_lite{i}"), &format!("owner{i}@lite.example"), &format!("lite{i}"));
            let base = app.base.clone();
            tasks.push(tokio::spawn(async move { signed_signup(&base, SECRET, &body).await }));
        }
    }
    let mut answers = Vec::new();
    for t in tasks {
        let res = t.await.expect("task");
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text);
        answers.push(res.body);
    }
    assert!(answers.chunks(2).all(|pair| pair[0] == pair[1]), "both deliveries of an event answer alike");
    assert_eq!(counts(&app).await, (31, 31));
    let runs = admin.get("/api/v1/flows?kind=onboarding&limit=200").await;
    assert_eq!(runs.body["items"].as_array().expect("items").len(), 31, "{}", runs.text);
}
