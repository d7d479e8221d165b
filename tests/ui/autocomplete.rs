//! Every `autocomplete` attribute on the rendered pages is a valid autofill detail per the
//! HTML standard (WHATWG, "Autofill"), and fits its control's type: axe-core's
//! `autocomplete-valid` rule (a "serious" finding) checks the same, but axe is an npm package, so
//! the tokens are checked here against the standard's own lists.

use serde_json::json;

use crate::support::{totp_code, TestApp};

/// Autofill field names that take no contact modifier ("Autofill field" in the standard).
const FIELDS: &[&str] = &[
    "name",
    "honorific-prefix",
    "given-name",
    "additional-name",
    "family-name",
    "honorific-suffix",
    "nickname",
    "username",
    "new-password",
    "current-password",
    "one-time-code",
    "organization-title",
    "organization",
    "street-address",
    "address-line1",
    "address-line2",
    "address-line3",
    "address-level4",
    "address-level3",
    "address-level2",
    "address-level1",
    "country",
    "country-name",
    "postal-code",
    "cc-name",
    "cc-given-name",
    "cc-additional-name",
    "cc-family-name",
    "cc-number",
    "cc-exp",
    "cc-exp-month",
    "cc-exp-year",
    "cc-csc",
    "cc-type",
    "transaction-currency",
    "transaction-amount",
    "language",
    "bday",
    "bday-day",
    "bday-month",
    "bday-year",
    "sex",
    "url",
    "photo",
];
/// Fields that may follow a contact modifier (home, work, mobile, fax, pager).
const CONTACT_FIELDS: &[&str] = &[
    "tel",
    "tel-country-code",
    "tel-national",
    "tel-area-code",
    "tel-local",
    "tel-local-prefix",
    "tel-local-suffix",
    "tel-extension",
    "email",
    "impp",
];
const CONTACT_MODIFIERS: &[&str] = &["home", "work", "mobile", "fax", "pager"];

/// Whether `value` is a valid autocomplete value for an `<input type=kind>` (or a select or
/// textarea when `kind` is `None`), and why not.
fn check(value: &str, kind: Option<&str>) -> Result<(), String> {
    let tokens: Vec<String> = value.split_ascii_whitespace().map(str::to_ascii_lowercase).collect();
    let mut rest: &[String] = &tokens;
    match rest {
        [] => return Err("empty".into()),
        [one] if one == "on" || one == "off" => return Ok(()),
        _ => {}
    }
    if rest.last().is_some_and(|t| t == "webauthn") {
        rest = &rest[..rest.len() - 1];
    }
    if rest.first().is_some_and(|t| t.starts_with("section-")) {
        rest = &rest[1..];
    }
    if rest.first().is_some_and(|t| t == "shipping" || t == "billing") {
        rest = &rest[1..];
    }
    let field = match rest {
        [field] if FIELDS.contains(&field.as_str()) || CONTACT_FIELDS.contains(&field.as_str()) => field,
        [modifier, field]
            if CONTACT_MODIFIERS.contains(&modifier.as_str()) && CONTACT_FIELDS.contains(&field.as_str()) =>
        {
            field
        }
        _ => return Err(format!("`{value}` is not a valid autofill detail")),
    };
    // The control must be able to hold the field (the standard's control groups, as axe applies
    // them): a password box for passwords and codes, an e-mail box for e-mail or a user name.
    let fits = match kind.unwrap_or("text") {
        "text" | "search" | "hidden" => true,
        "email" => ["email", "username"].contains(&field.as_str()),
        "password" => ["current-password", "new-password", "one-time-code"].contains(&field.as_str()),
        "tel" => field.starts_with("tel"),
        "url" => ["url", "photo", "impp"].contains(&field.as_str()),
        "number" => field.starts_with("cc-exp") || field.starts_with("bday") || field == "transaction-amount",
        "date" | "month" => field == "bday" || field == "cc-exp",
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("`{value}` does not fit an input of type {}", kind.unwrap_or("text")))
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    tag[at..].split('"').next().map(str::to_owned)
}

/// Every form control's (tag, type, autocomplete) on the page.
fn controls(html: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for element in ["input", "select", "textarea"] {
        let open = format!("<{element}");
        for (at, _) in html.match_indices(&open) {
            let tag = &html[at..at + html[at..].find('>').unwrap_or(html.len() - at)];
            let kind = if element == "input" { Some(attr(tag, "type").unwrap_or_else(|| "text".into())) } else { None };
            out.push((tag.to_owned(), kind, attr(tag, "autocomplete")));
        }
    }
    out
}

#[test]
fn the_checker_knows_the_standard() {
    assert!(check("username", Some("email")).is_ok());
    assert!(check("current-password", Some("password")).is_ok());
    assert!(check("one-time-code", Some("text")).is_ok());
    assert!(check("section-a shipping work email", Some("email")).is_ok());
    assert!(check("off", Some("email")).is_ok());
    assert!(check("e-mail", Some("email")).is_err());
    assert!(check("password", Some("password")).is_err());
    assert!(check("totp", Some("text")).is_err());
    assert!(check("company", Some("text")).is_err());
    assert!(check("work organization", Some("text")).is_err(), "a modifier only goes with contact fields");
    assert!(check("new-password", Some("email")).is_err());
}

#[tokio::test]
async fn every_autocomplete_value_on_the_pages_is_valid() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let customer = app.customer(&admin, "forms@example.com", "starter").await;
    let user = app.customer_user(&admin, &customer, "owner@forms.example").await;
    let enrol = user.post("/api/v1/auth/totp/enroll", &json!({"password": "Portal-Password-42"})).await;
    let uri = enrol.str("otpauth_uri");
    user.post("/api/v1/auth/totp/confirm", &json!({"code": totp_code(&uri)})).await;
    let user_id = user.get("/api/v1/auth/me").await.body["user"]["id"].as_str().expect("id").to_owned();

    let pages: Vec<(&crate::support::Client, String)> = vec![
        (&admin, "/admin/login".into()),
        (&admin, "/portal/login".into()),
        (&admin, "/set-password?token=nothing".into()),
        (&admin, "/admin".into()),
        (&admin, "/admin/account".into()),
        (&admin, "/admin/customers".into()),
        (&admin, "/admin/customers/new".into()),
        (&admin, format!("/admin/customers/{customer}")),
        (&admin, format!("/admin/customers/{customer}/users/{user_id}/totp-reset")),
        (&admin, "/admin/sites".into()),
        (&admin, "/admin/sites/new".into()),
        (&admin, "/admin/sign-in-limits".into()),
        (&admin, "/admin/audit".into()),
        (&admin, "/admin/alerts/rules".into()),
        (&admin, "/admin/alerts/channels".into()),
        (&admin, "/admin/alerts/silences".into()),
        (&user, "/portal".into()),
        (&user, "/portal/alerts".into()),
        (&user, "/portal/account".into()),
    ];
    let mut seen = 0;
    let mut problems = Vec::new();
    for (client, path) in &pages {
        // Signed-in pages for the signed-in client; the sign-in pages anonymously (a signed-in
        // visitor is sent home).
        let http = if path.ends_with("/login") || path.starts_with("/set-password") {
            reqwest::Client::new()
        } else {
            client.http.clone()
        };
        let res = http.get(format!("{}{path}", app.base)).send().await.expect("GET");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        let html = res.text().await.expect("body");
        for (tag, kind, autocomplete) in controls(&html) {
            if kind.as_deref() == Some("hidden") || kind.as_deref() == Some("submit") {
                continue;
            }
            if let Some(value) = autocomplete {
                seen += 1;
                if let Err(why) = check(&value, kind.as_deref()) {
                    problems.push(format!("{path}: {why}: {tag}>"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "invalid autocomplete values:\n{}", problems.join("\n"));
    assert!(seen >= 10, "the pages were checked ({seen} autocomplete attributes)");
}
