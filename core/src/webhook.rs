//! Signed webhooks in: `Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
//!
//! The timestamp is inside the signed text, so a captured request cannot be replayed later with
//! a fresh `t`; the tolerance bounds how long a captured one stays valid (event ids are
//! de-duplicated on top of that). Two secrets are accepted at once so a secret can be rotated
//! without dropping signups. Comparisons are constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

pub const SIGNATURE_HEADER: &str = "Berth-Signature";
/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Berth-Signature header is missing")]
    Missing,
    #[error("the Berth-Signature header is malformed; expected t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature timestamp is more than 5 minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

struct Parsed {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Parsed, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
            // Unknown schemes are skipped so a sender can add a newer one alongside v1.
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !signatures.is_empty() => Ok(Parsed { timestamp, signatures }),
        _ => Err(SignatureError::Malformed),
    }
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a sender puts on `body` at `timestamp` (for docs, tests and tooling).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Verifies `header` over `body` against any of `secrets` (empty secrets never match), at
/// `now` (unix seconds).
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[&Secret], now: i64) -> Result<(), SignatureError> {
    let parsed = parse(header.ok_or(SignatureError::Missing)?)?;
    // `abs_diff` cannot overflow: `(now - t).abs()` wraps for a `t` near `i64::MIN` in a release
    // build, and a wrapped difference would pass the check.
    if now.abs_diff(parsed.timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    for secret in secrets.iter().map(|s| s.expose()).filter(|s| !s.is_empty()) {
        for candidate in &parsed.signatures {
            // `verify_slice` compares in constant time.
            if mac(secret, parsed.timestamp, body).verify_slice(candidate).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn accepts_current_and_previous_secret() {
        let current = Secret::new("whsec-current");
        let previous = Secret::new("whsec-previous");
        let body = br#"{"id":"evt_1"}"#;
        for signer in ["whsec-current", "whsec-previous"] {
            let header = sign(signer, NOW, body);
            assert_eq!(verify(Some(&header), body, &[&current, &previous], NOW + 10), Ok(()));
        }
        let header = sign("whsec-other", NOW, body);
        assert_eq!(verify(Some(&header), body, &[&current, &previous], NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn body_and_timestamp_are_both_signed() {
        let secret = Secret::new("k");
        let header = sign("k", NOW, b"{}");
        assert_eq!(verify(Some(&header), b"{ }", &[&secret], NOW), Err(SignatureError::Mismatch));
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(verify(Some(&moved), b"{}", &[&secret], NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tolerance_is_five_minutes_either_way() {
        let secret = Secret::new("k");
        let header = sign("k", NOW, b"x");
        assert_eq!(verify(Some(&header), b"x", &[&secret], NOW + 300), Ok(()));
        assert_eq!(verify(Some(&header), b"x", &[&secret], NOW + 360), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), b"x", &[&secret], NOW - 360), Err(SignatureError::Stale));
    }

    #[test]
    fn extreme_timestamps_are_stale_not_wrapped() {
        let secret = Secret::new("k");
        for t in [i64::MIN, i64::MIN + 1, i64::MIN + NOW, i64::MAX, i64::MAX - 1] {
            let header = sign("k", t, b"x");
            assert_eq!(verify(Some(&header), b"x", &[&secret], NOW), Err(SignatureError::Stale), "t={t}");
        }
        let header = sign("k", NOW, b"x");
        assert_eq!(verify(Some(&header), b"x", &[&secret], i64::MIN), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), b"x", &[&secret], i64::MAX), Err(SignatureError::Stale));
    }

    #[test]
    fn malformed_missing_and_empty_keys() {
        let secret = Secret::new("k");
        assert_eq!(verify(None, b"x", &[&secret], NOW), Err(SignatureError::Missing));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert_eq!(verify(Some(bad), b"x", &[&secret], NOW), Err(SignatureError::Malformed), "{bad}");
        }
        // A request signed with an empty key never passes, even if the server's key is empty.
        let empty = Secret::new("");
        let header = sign("", NOW, b"x");
        assert_eq!(verify(Some(&header), b"x", &[&empty], NOW), Err(SignatureError::Mismatch));
        // Extra schemes are ignored, extra v1 values are tried.
        let good = sign("k", NOW, b"x");
        let with_extra = format!("{good},v0=abcd,v1={}", "00".repeat(32));
        assert_eq!(verify(Some(&with_extra), b"x", &[&secret], NOW), Ok(()));
    }
}
