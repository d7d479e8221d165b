//! Site certificates: from an ACME CA (HTTP-01) when one is configured, self-signed otherwise,
//! so a site always has *a* certificate and HTTPS never silently falls back to nothing.
//!
//! HTTP-01 answers are published through a [`ChallengeStore`]: a directory whose files the
//! ingress serves at `/.well-known/acme-challenge/<token>` for every site host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::config::Config;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ACME: {0}")]
    Acme(String),
    #[error("the CA refused the order: {0}")]
    Refused(String),
    #[error("cannot publish the challenge: {0}")]
    Challenge(String),
    #[error("cannot make a certificate: {0}")]
    Generate(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    Acme,
    SelfSigned,
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct Certificate {
    pub chain_pem: String,
    pub key_pem: String,
    pub issuer: Issuer,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").field("issuer", &self.issuer).field("key_pem", &"********").finish()
    }
}

/// Where HTTP-01 key authorisations are published for the CA to fetch.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    async fn put(&self, token: &str, key_authorization: &str) -> Result<(), TlsError>;
    async fn remove(&self, token: &str) -> Result<(), TlsError>;
}

/// One file per token in a directory served by the ingress.
pub struct DirChallengeStore {
    dir: PathBuf,
}

impl DirChallengeStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Tokens are base64url by RFC 8555; anything else is refused before it names a file.
    fn path(&self, token: &str) -> Result<PathBuf, TlsError> {
        let valid = !token.is_empty()
            && token.len() <= 128
            && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(self.dir.join(token))
        } else {
            Err(TlsError::Challenge(format!("unexpected token {token:?}")))
        }
    }
}

#[async_trait]
impl ChallengeStore for DirChallengeStore {
    async fn put(&self, token: &str, key_authorization: &str) -> Result<(), TlsError> {
        let path = self.path(token)?;
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| TlsError::Challenge(e.to_string()))?;
        tokio::fs::write(&path, key_authorization).await.map_err(|e| TlsError::Challenge(e.to_string()))
    }

    async fn remove(&self, token: &str) -> Result<(), TlsError> {
        match tokio::fs::remove_file(self.path(token)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TlsError::Challenge(e.to_string())),
            _ => Ok(()),
        }
    }
}

/// Where a host's certificate lives on disk for the ingress:
/// `<dir>/<host>/fullchain.pem` and `<dir>/<host>/privkey.pem` (mode 0600).
pub struct CertStore {
    dir: PathBuf,
}

impl CertStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `host` must already be a validated host name (it names a directory).
    pub fn paths(&self, host: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.join(host);
        (dir.join("fullchain.pem"), dir.join("privkey.pem"))
    }

    /// Which issuer made the stored certificate, if there is one.
    pub async fn issuer(&self, host: &str) -> Option<Issuer> {
        let meta = tokio::fs::read_to_string(self.dir.join(host).join("issuer")).await.ok()?;
        match meta.trim() {
            "acme" => Some(Issuer::Acme),
            "self-signed" => Some(Issuer::SelfSigned),
            _ => None,
        }
    }

    /// When the stored certificate of `host` (its leaf, the first in the chain) stops being
    /// valid; `None` when there is none or it cannot be read.
    pub async fn not_after(&self, host: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let (chain, _) = self.paths(host);
        let pem = tokio::fs::read(chain).await.ok()?;
        not_after(&pem)
    }

    /// Writes the key first and the issuer marker last, so a crash mid-way leaves no marker and
    /// the next attempt starts over.
    pub async fn save(&self, host: &str, cert: &Certificate) -> Result<(), TlsError> {
        let io = |e: std::io::Error| TlsError::Generate(format!("cannot store the certificate: {e}"));
        let dir = self.dir.join(host);
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let (chain, key) = self.paths(host);
        write_private(&key, &cert.key_pem).await.map_err(io)?;
        tokio::fs::write(&chain, &cert.chain_pem).await.map_err(io)?;
        let marker = match cert.issuer {
            Issuer::Acme => "acme",
            Issuer::SelfSigned => "self-signed",
        };
        tokio::fs::write(dir.join("issuer"), marker).await.map_err(io)
    }
}

async fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let path = path.to_owned();
    let contents = contents.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(&path)?.write_all(contents.as_bytes())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The end of the validity of the first certificate in a PEM chain.
pub fn not_after(chain_pem: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
}

/// A certificate for `hosts` signed by its own key: the fallback when ACME is off.
pub fn self_signed(hosts: &[String]) -> Result<Certificate, TlsError> {
    self_signed_until(hosts, None)
}

/// Like [`self_signed`], valid until `not_after` when given (rcgen's default otherwise).
pub fn self_signed_until(
    hosts: &[String],
    not_after: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Certificate, TlsError> {
    let Some(until) = not_after else { return self_signed_default(hosts) };
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(generate)?;
    let seconds = |t: chrono::DateTime<chrono::Utc>| {
        rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    params.not_before = seconds(chrono::Utc::now() - chrono::Duration::days(1));
    params.not_after = seconds(until);
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok(Certificate { chain_pem: cert.pem(), key_pem: key.serialize_pem(), issuer: Issuer::SelfSigned })
}

fn self_signed_default(hosts: &[String]) -> Result<Certificate, TlsError> {
    let certified =
        rcgen::generate_simple_self_signed(hosts.to_vec()).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(Certificate {
        chain_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        issuer: Issuer::SelfSigned,
    })
}

/// Orders certificates from an ACME directory (Let's Encrypt, or pebble in tests).
pub struct AcmeIssuer {
    directory_url: String,
    ca_root: Option<PathBuf>,
    contact: Option<String>,
    account: OnceCell<Account>,
    retry: RetryPolicy,
}

impl AcmeIssuer {
    pub fn new(directory_url: &str, ca_root: Option<PathBuf>, contact: Option<String>) -> Self {
        Self {
            directory_url: directory_url.to_owned(),
            ca_root,
            contact,
            account: OnceCell::new(),
            retry: RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(Duration::from_secs(60)),
        }
    }

    pub fn from_config(config: &Config) -> Option<Arc<Self>> {
        config
            .acme
            .directory_url
            .as_ref()
            .map(|url| Arc::new(Self::new(url.as_str(), config.acme.ca_root.clone(), config.acme.contact.clone())))
    }

    async fn account(&self) -> Result<&Account, TlsError> {
        self.account
            .get_or_try_init(|| async {
                let builder = match &self.ca_root {
                    Some(root) => Account::builder_with_root(root),
                    None => Account::builder(),
                }
                .map_err(|e| TlsError::Acme(e.to_string()))?;
                let contact: Vec<String> = self.contact.iter().map(|c| format!("mailto:{c}")).collect();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
                let (account, _credentials) = builder
                    .create(&new, self.directory_url.clone(), None)
                    .await
                    .map_err(|e| TlsError::Acme(e.to_string()))?;
                Ok(account)
            })
            .await
    }

    /// Proves control of `hosts` over HTTP-01 and returns the issued certificate.
    pub async fn issue(&self, hosts: &[String], challenges: &dyn ChallengeStore) -> Result<Certificate, TlsError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
        let mut order =
            account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| TlsError::Acme(e.to_string()))?;
        let mut published = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(result) = authorizations.next().await {
            let mut authz = result.map_err(|e| TlsError::Acme(e.to_string()))?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| TlsError::Refused("the CA offers no http-01 challenge".into()))?;
            let token = challenge.token.clone();
            challenges.put(&token, challenge.key_authorization().as_str()).await?;
            published.push(token);
            challenge.set_ready().await.map_err(|e| TlsError::Acme(e.to_string()))?;
        }
        let outcome = self.finish(&mut order).await;
        for token in published {
            if let Err(e) = challenges.remove(&token).await {
                tracing::warn!(error = %e, "Could not remove a spent ACME challenge");
            }
        }
        outcome
    }

    async fn finish(&self, order: &mut instant_acme::Order) -> Result<Certificate, TlsError> {
        let status = order.poll_ready(&self.retry).await.map_err(|e| TlsError::Acme(e.to_string()))?;
        if status != OrderStatus::Ready {
            let detail =
                order.state().error.as_ref().map(|p| format!("{p:?}")).unwrap_or_else(|| format!("{status:?}"));
            return Err(TlsError::Refused(detail));
        }
        let key_pem = order.finalize().await.map_err(|e| TlsError::Acme(e.to_string()))?;
        let chain_pem = order.poll_certificate(&self.retry).await.map_err(|e| TlsError::Acme(e.to_string()))?;
        Ok(Certificate { chain_pem, key_pem, issuer: Issuer::Acme })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_covers_the_hosts() {
        let cert = self_signed(&["shop.hosting.test".into()]).expect("generates");
        assert!(cert.chain_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
        assert_eq!(cert.issuer, Issuer::SelfSigned);
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }

    #[tokio::test]
    async fn challenge_tokens_cannot_name_other_files() {
        let dir = std::env::temp_dir().join(format!("berth-acme-{}", uuid::Uuid::new_v4()));
        let store = DirChallengeStore::new(&dir);
        store.put("abc-DEF_123", "abc-DEF_123.thumb").await.expect("valid token");
        assert_eq!(std::fs::read_to_string(dir.join("abc-DEF_123")).expect("file"), "abc-DEF_123.thumb");
        for bad in ["../etc/passwd", "a/b", "", "a b", "..", "tok\n"] {
            assert!(store.put(bad, "x").await.is_err(), "{bad:?}");
        }
        store.remove("abc-DEF_123").await.expect("removed");
        store.remove("abc-DEF_123").await.expect("removing twice is fine");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_expiry_of_a_stored_certificate_is_read_back() {
        let until = chrono::Utc::now() + chrono::Duration::days(2);
        let cert = self_signed_until(&["short.example".to_owned()], Some(until)).expect("certificate");
        let read = not_after(cert.chain_pem.as_bytes()).expect("parsed");
        assert!((read - until).num_seconds().abs() <= 1, "{read} vs {until}");
        assert!(not_after(b"not a certificate").is_none());
    }
}
