//! ACME: where site certificates are ordered (over HTTP-01) and how Berth introduces itself.

use std::path::PathBuf;

use url::Url;

use super::{Mask, Raw, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[ACME_DIRECTORY_URL, ACME_CA_ROOT, ACME_CONTACT];

const ACME_DIRECTORY_URL: Setting = Setting {
    key: "acme_directory_url",
    default: "(none: self-signed certificates)",
    mask: Mask::Plain,
    about: "the ACME server's directory; without it sites get self-signed certificates",
    value: |c| c.acme.directory_url.as_ref().map(Url::to_string),
};
const ACME_CA_ROOT: Setting = Setting {
    key: "acme_ca_root",
    default: "(system roots)",
    mask: Mask::Plain,
    about: "PEM file of the ACME server's root, for private or test CAs",
    value: |c| c.acme.ca_root.as_ref().map(|p| p.display().to_string()),
};
const ACME_CONTACT: Setting = Setting {
    key: "acme_contact",
    default: "(none)",
    mask: Mask::Plain,
    about: "e-mail the CA may write to about certificates",
    value: |c| c.acme.contact.clone(),
};

#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// `None`: ACME is off.
    pub directory_url: Option<Url>,
    pub ca_root: Option<PathBuf>,
    pub contact: Option<String>,
}

impl AcmeConfig {
    pub(super) fn load(raw: &mut Raw) -> Self {
        let directory_url = raw.get(&ACME_DIRECTORY_URL).and_then(|u| match Url::parse(&u) {
            Ok(url) if url.scheme() == "https" => Some(url),
            _ => {
                raw.problem(&ACME_DIRECTORY_URL, format_args!("`{u}` must be an https URL"));
                None
            }
        });
        let ca_root = raw.get(&ACME_CA_ROOT).map(PathBuf::from);
        if let Some(path) = &ca_root {
            if !path.is_file() {
                raw.problem(&ACME_CA_ROOT, format_args!("{} is not a readable file", path.display()));
            }
        }
        let contact = raw.get(&ACME_CONTACT);
        if let Some(c) = &contact {
            if crate::validate::email(c).is_err() {
                raw.problem(&ACME_CONTACT, format_args!("`{c}` is not an e-mail address"));
            }
        }
        AcmeConfig { directory_url, ca_root, contact }
    }
}
