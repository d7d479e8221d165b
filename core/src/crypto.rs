//! Secrets at rest and credentials.
//!
//! - Data at rest (site env, TOTP secrets) is sealed with XChaCha20-Poly1305 under a key derived
//!   from `BERTH_SECRET_KEY` by HKDF-SHA256. The associated data binds a ciphertext to its row
//!   (`site-env:<id>`), so a sealed value copied onto another row fails to open.
//! - Bearer tokens and one-time links are 256-bit random values; only their SHA-256 is stored.
//!   A fast hash is right here (unlike passwords): the input is already full-entropy.
//! - Backup repositories: each customer's restic-format repository is opened with a password
//!   derived from `BERTH_SECRET_KEY` (HKDF to a backup key, then HMAC-SHA256 over
//!   `backup-repo:<customer id>`), so one customer's password never opens another's repository
//!   and nothing but the secret key needs keeping.
//! - Passwords use argon2id with the OWASP-recommended m=19456 KiB, t=2, p=1; a hash made with
//!   other parameters verifies and is flagged for rehashing.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this secret key")]
    WrongKey,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Keys derived from the secret key, one per purpose.
#[derive(Clone)]
pub struct Keys {
    data: [u8; 32],
    /// Signs values handed to the browser (the sign-in form's CSRF cookie).
    signing: [u8; 32],
    /// Derives the passwords of backup repositories, one per customer.
    backup: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(********)")
    }
}

impl Keys {
    pub fn derive(secret_key: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"berth"), secret_key);
        let mut data = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so expand cannot fail.
        hk.expand(b"berth data-at-rest v1", &mut data).expect("HKDF output length is valid");
        let mut signing = [0u8; 32];
        hk.expand(b"berth signing v1", &mut signing).expect("HKDF output length is valid");
        let mut backup = [0u8; 32];
        hk.expand(b"berth backup repositories v1", &mut backup).expect("HKDF output length is valid");
        Self { data, signing, backup }
    }

    /// The password of a customer's backup repository: HMAC-SHA256 under the backup key over
    /// `backup-repo:<customer id>`, as hex. Stable for a given secret key; another customer's id
    /// (or another secret key) gives an unrelated password.
    pub fn backup_repo_password(&self, customer_id: uuid::Uuid) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.backup).expect("HMAC takes keys of any length");
        mac.update(format!("backup-repo:{customer_id}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// HMAC-SHA256 of `message` under the signing key, bound to `context`, as hex.
    pub fn sign(&self, context: &str, message: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.signing).expect("HMAC takes keys of any length");
        mac.update(context.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is [`Keys::sign`] of `message` in `context` (constant time).
    pub fn verify(&self, context: &str, message: &str, signature: &str) -> bool {
        secure_eq(self.sign(context, message).as_bytes(), signature.as_bytes())
    }

    /// Encrypts `plaintext`, bound to `context`; returns base64(nonce || ciphertext).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.data).into());
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let raw = B64.decode(sealed).map_err(|_| CryptoError::Malformed)?;
        if raw.len() < 24 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.data).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
            .map_err(|_| CryptoError::WrongKey)
    }
}

/// A new random secret: `prefix` + 64 hex characters (256 bits).
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a bearer token or one-time link.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn secure_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A random password for generated accounts: 20 characters from an unambiguous alphabet.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Hash(e.to_string()))
}

#[derive(Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    Wrong,
    Ok,
    /// Correct, but hashed with parameters other than today's: store a fresh hash.
    OkNeedsRehash,
}

pub fn verify_password(password: &str, stored: &str) -> PasswordCheck {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return PasswordCheck::Wrong;
    };
    // Verify with the parameters recorded in the hash itself, whatever they are.
    if Argon2::default().verify_password(password.as_bytes(), &parsed).is_err() {
        return PasswordCheck::Wrong;
    }
    let current = argon2();
    let same = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            let want = current.params();
            p.m_cost() == want.m_cost() && p.t_cost() == want.t_cost() && p.p_cost() == want.p_cost()
        });
    if same {
        PasswordCheck::Ok
    } else {
        PasswordCheck::OkNeedsRehash
    }
}

/// Spends the same time as a real verification, so an unknown e-mail is not told apart from a
/// wrong password by the response time.
pub fn burn_password_check(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef");
        let sealed = keys.seal("site-env:1", b"{\"A\":\"b\"}");
        assert_eq!(keys.open("site-env:1", &sealed).expect("opens"), b"{\"A\":\"b\"}");
        assert!(matches!(keys.open("site-env:2", &sealed), Err(CryptoError::WrongKey)));
        let other = Keys::derive(b"another key another key another!!");
        assert!(matches!(other.open("site-env:1", &sealed), Err(CryptoError::WrongKey)));
        assert!(matches!(keys.open("site-env:1", "!!"), Err(CryptoError::Malformed)));
    }

    #[test]
    fn passwords_verify_and_old_params_need_rehash() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_password("correct horse battery", &hash), PasswordCheck::Ok);
        assert_eq!(verify_password("wrong", &hash), PasswordCheck::Wrong);
        assert_eq!(verify_password("x", "garbage"), PasswordCheck::Wrong);

        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(4096, 1, 1, None).expect("params"));
        let old =
            weak.hash_password(b"correct horse battery", &SaltString::generate(&mut OsRng)).expect("hash").to_string();
        assert_eq!(verify_password("correct horse battery", &old), PasswordCheck::OkNeedsRehash);
    }

    #[test]
    fn backup_passwords_are_per_customer_and_per_key() {
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef");
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(keys.backup_repo_password(a), keys.backup_repo_password(a), "stable");
        assert_eq!(keys.backup_repo_password(a).len(), 64);
        assert_ne!(keys.backup_repo_password(a), keys.backup_repo_password(b));
        let other = Keys::derive(b"another key another key another!!");
        assert_ne!(keys.backup_repo_password(a), other.backup_repo_password(a));
        assert_ne!(keys.backup_repo_password(a), keys.sign("backup-repo", &a.to_string()));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token("bt_");
        assert!(a.starts_with("bt_") && a.len() == 3 + 64);
        assert_ne!(a, random_token("bt_"));
        assert_eq!(hash_token(&a).len(), 64);
        assert_eq!(random_password().len(), 20);
    }
}
