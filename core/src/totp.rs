//! RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s), the parameters every
//! authenticator app supports. One step of clock skew is accepted either way.

use rand::rngs::OsRng;
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

use crate::error::{Error, Result};

pub const ISSUER: &str = "Berth";

/// 160 random bits, the size RFC 4226 recommends.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    OsRng.fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> Result<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec(), Some(ISSUER.to_owned()), account.to_owned())
        .map_err(|e| Error::Internal(anyhow::anyhow!("TOTP setup failed: {e}")))
}

pub fn uri(secret: &[u8], account: &str) -> Result<String> {
    Ok(totp(secret, account)?.get_url())
}

pub fn check(secret: &[u8], account: &str, code: &str) -> Result<bool> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    totp(secret, account)?
        .check_current(code)
        .map_err(|e| Error::Internal(anyhow::anyhow!("system clock before 1970: {e}")))
}

/// The current code, for tests and for operators checking a secret.
pub fn current(secret: &[u8], account: &str) -> Result<String> {
    totp(secret, account)?
        .generate_current()
        .map_err(|e| Error::Internal(anyhow::anyhow!("system clock before 1970: {e}")))
}
