//! RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s), the parameters every
//! authenticator app supports. One step of clock skew is accepted either way; each step's code
//! is accepted once (the store remembers the last step used).

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

/// The time step (Unix time / 30 s) whose code `code` is, within one step of clock skew either
/// way, or `None`. The caller remembers the step so the same code is not accepted twice.
pub fn matching_step(secret: &[u8], account: &str, code: &str) -> Result<Option<u64>> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, account)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Error::Internal(anyhow::anyhow!("system clock before 1970: {e}")))?
        .as_secs();
    let step = now / totp.step;
    // Oldest first, so a code valid in two steps (never, in practice) binds the earlier one.
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = totp.generate(candidate * totp.step);
        if crate::crypto::secure_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// The current code, for tests and for operators checking a secret.
pub fn current(secret: &[u8], account: &str) -> Result<String> {
    totp(secret, account)?
        .generate_current()
        .map_err(|e| Error::Internal(anyhow::anyhow!("system clock before 1970: {e}")))
}
