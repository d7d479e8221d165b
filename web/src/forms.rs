//! Reading form posts: the signed-in, CSRF-checked [`PostForm`] extractor, and the parsing of
//! the multi-line fields (domains, environment) into what the store takes.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use berth_core::auth as core_auth;
use berth_core::FieldError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::PageCtx;
use crate::error::PageError;
use crate::WebState;

/// Form bodies are small; anything larger is not one of ours.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in form post whose `csrf_token` field matched the session's token. Taking this
/// extractor is what makes a POST handler safe: there is no way to get the form without the
/// check.
pub struct PostForm<T> {
    pub ctx: PageCtx,
    pub form: T,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + Send> FromRequest<WebState> for PostForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let ctx = PageCtx::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| PageError::BadRequest("the form is too large".into()))?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !core_auth::csrf_matches(&ctx.session, sent.csrf_token.as_deref()).await? {
            return Err(PageError::CsrfFailed);
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| PageError::BadRequest(e.to_string()))?;
        Ok(PostForm { ctx, form })
    }
}

/// One domain per line (commas work too); blank lines are ignored. Error `domains[i]` from the
/// store then refers to the i-th domain listed.
pub fn parse_domains(text: &str) -> Vec<String> {
    text.split(['\n', ',']).map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned).collect()
}

/// `KEY=value` per line; blank lines and `#` comments are ignored. A line without `=` is a
/// field error on `env`; keys and values are then validated by the store.
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>, FieldError> {
    let mut env = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(FieldError::new("env", format!("line {} needs the form KEY=value", i + 1)));
        };
        env.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_one_per_line_or_comma() {
        assert_eq!(parse_domains("a.example\n\n b.example , c.example\r\n"), ["a.example", "b.example", "c.example"]);
    }

    #[test]
    fn env_lines() {
        let env = parse_env("# comment\nPORT=8080\r\nEMPTY=\nURL=postgres://x?a=b\n").expect("valid");
        assert_eq!(env.get("PORT").map(String::as_str), Some("8080"));
        assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
        assert_eq!(env.get("URL").map(String::as_str), Some("postgres://x?a=b"));
        assert_eq!(parse_env("A=1\nnonsense").expect_err("no =").message, "line 2 needs the form KEY=value");
    }
}
