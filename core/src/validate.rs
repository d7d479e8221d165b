//! Input validation at the API edge.
//!
//! Every value accepted here may later end up in a Docker API call, an nginx
//! configuration file, a DNS record or a file name. Each of those has its own
//! quoting rules and its own dangerous characters, and nobody can list all of
//! them reliably. So every grammar in this module is an **allow-list**: it
//! spells out exactly which characters and shapes are acceptable and refuses
//! everything else. Never turn one of these into a block-list of "bad"
//! characters; extend the allow-list instead, deliberately.
//!
//! Every function returns `Err` with a short sentence meant for an end user,
//! without the field name (the caller knows which field it checked), e.g.
//! `"must be a valid e-mail address"`.

use std::collections::HashSet;
use std::sync::OnceLock;

use idna::AsciiDenyList;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted, in characters.
pub const MAX_PASSWORD_LEN: usize = 128;

/// Longest domain name, in ASCII (punycode) form, without the trailing dot.
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label (and site name).
const MAX_LABEL_LEN: usize = 63;
/// Longest e-mail address (RFC 5321 forward-path limit less the brackets).
const MAX_EMAIL_LEN: usize = 254;
const MIN_EMAIL_LEN: usize = 3;
/// Longest local part (before the `@`) of an e-mail address.
const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// Anything longer than this cannot possibly map to a valid domain or e-mail
/// address; refuse it before handing it to the (comparatively costly) IDNA code.
const MAX_RAW_NAME_BYTES: usize = 1024;
const MAX_COMPANY_NAME_LEN: usize = 200;
const MAX_TOKEN_NAME_LEN: usize = 100;
const MAX_IMAGE_REF_LEN: usize = 255;
const MAX_IMAGE_TAG_LEN: usize = 128;
const MAX_ENV_KEY_LEN: usize = 128;
const MAX_ENV_VALUE_BYTES: usize = 4096;

/// Punctuation allowed in the local part of an e-mail address besides ASCII
/// letters, digits and `.` (RFC 5322 `atext`).
const EMAIL_LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

const ERR_EMAIL: &str = "must be a valid e-mail address";
const ERR_DOMAIN: &str = "must be a valid domain name, like example.com";
const ERR_IMAGE: &str = "must be a valid Docker image reference, like nginx:1.27 or ghcr.io/acme/app:v2";

/// Refuses values whose byte length alone rules them out, before any other work.
fn check_raw_size(value: &str, max_bytes: usize, err: &str) -> Result<(), String> {
    if value.len() > max_bytes {
        Err(err.to_owned())
    } else {
        Ok(())
    }
}

/// Characters never allowed in free text (company names, token names):
/// ASCII/Latin-1 control characters (newlines, tabs, NUL, DEL, ...), the
/// Unicode line and paragraph separators, and the bidirectional embedding,
/// override and isolate controls that can make displayed text lie about its
/// content.
fn is_forbidden_text_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Trims and checks a single line of free text for length (in characters) and
/// forbidden characters.
fn free_text(value: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if trimmed.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters long"));
    }
    if trimmed.chars().any(is_forbidden_text_char) {
        return Err("must not contain line breaks, tabs or other control characters".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A lowercase LDH label: 1..=63 chars of `[a-z0-9-]`, not starting or ending
/// with a hyphen.
fn is_ldh_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LEN
                && *first != b'-'
                && *last != b'-'
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
}

/// Converts a domain (no surrounding whitespace, no trailing dot) to its
/// lowercase ASCII form and checks it against the strict hostname grammar.
fn ascii_domain(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".to_owned());
    }
    check_raw_size(raw, MAX_RAW_NAME_BYTES, ERR_DOMAIN)?;
    // UTS #46 mapping + punycode. STD3 rules refuse every ASCII character other
    // than letters, digits, `-` and `.`; the checks below re-verify the output
    // anyway, so correctness does not depend on the IDNA crate's deny list.
    let ascii = idna::domain_to_ascii_cow(raw.as_bytes(), AsciiDenyList::STD3).map_err(|_| ERR_DOMAIN.to_owned())?;
    let ascii = ascii.to_ascii_lowercase();

    if ascii.is_empty() {
        return Err(ERR_DOMAIN.to_owned());
    }
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(format!("must be at most {MAX_DOMAIN_LEN} characters long"));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if !labels.iter().all(|label| is_ldh_label(label)) {
        return Err(ERR_DOMAIN.to_owned());
    }
    match labels.as_slice() {
        [_, .., tld] => {
            // Real top-level domains start with a letter (`com`, `xn--p1ai`).
            // This refuses IPv4 addresses (`10.0.0.1`) and the numeric forms
            // some resolvers read as addresses (`127.1`, `0x7f.0x1`).
            if tld.bytes().next().is_some_and(|b| b.is_ascii_lowercase()) {
                Ok(ascii)
            } else {
                Err("must be a domain name, not an IP address".to_owned())
            }
        }
        _ => Err("must contain at least one dot, like example.com".to_owned()),
    }
}

/// An e-mail address, returned in canonical form.
///
/// Only the common `dot-atom` form is accepted: no quoted local parts, no
/// comments, no IP-literal domains. The domain follows the same rules as
/// [`domain`], so internationalised domains are accepted and returned in
/// punycode.
///
/// Berth treats e-mail addresses case-insensitively (log-in, uniqueness,
/// invitations), so the **whole** address is returned lowercased, local part
/// included, even though RFC 5321 technically lets a mail server distinguish
/// case in the local part.
pub fn email(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    check_raw_size(trimmed, MAX_RAW_NAME_BYTES, ERR_EMAIL)?;
    // Whitespace, control characters, quotes and angle brackets are refused by
    // the allow-lists below as well; checking up front keeps the message plain.
    if trimmed.is_empty() || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ERR_EMAIL.to_owned());
    }
    let Some((local, domain_part)) = trimmed.split_once('@') else {
        return Err(ERR_EMAIL.to_owned());
    };
    if domain_part.contains('@') || !is_email_local_part(local) {
        return Err(ERR_EMAIL.to_owned());
    }
    // No trailing dot here: `user@example.com.` is not how addresses are written.
    // `localhost` (RFC 6761) is the one single-label domain accepted: the embedded default's
    // first admin is admin@localhost.
    let domain = if domain_part.eq_ignore_ascii_case("localhost") {
        "localhost".to_owned()
    } else {
        ascii_domain(domain_part).map_err(|_| ERR_EMAIL.to_owned())?
    };

    let address = format!("{}@{}", local.to_ascii_lowercase(), domain);
    if !(MIN_EMAIL_LEN..=MAX_EMAIL_LEN).contains(&address.len()) {
        return Err(ERR_EMAIL.to_owned());
    }
    Ok(address)
}

/// RFC 5322 `dot-atom-text`, ASCII only, 1..=64 characters.
fn is_email_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_EMAIL_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || EMAIL_LOCAL_SPECIALS.contains(c))
}

/// A fully qualified domain name, returned in lowercase ASCII form.
///
/// Surrounding whitespace and one trailing dot are dropped; Unicode names are
/// converted with IDNA (`bücher.example` becomes `xn--bcher-kva.example`).
/// The result has at least two labels, each 1..=63 characters of `[a-z0-9-]`
/// without a leading or trailing hyphen, is at most 253 characters long, and
/// its last label starts with a letter (so IP addresses are refused).
/// Underscores and wildcards are refused.
pub fn domain(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
    ascii_domain(without_dot)
}

/// A site slug, used for container names and subdomains: 1..=63 characters of
/// `[a-z0-9-]`, starting and ending with a letter or digit.
pub fn site_name(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_LABEL_LEN {
        return Err(format!("must be 1 to {MAX_LABEL_LEN} characters long"));
    }
    if is_ldh_label(value) {
        Ok(())
    } else if value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Err("must start and end with a lowercase letter or digit".to_owned())
    } else {
        Err("may only contain lowercase letters, digits and hyphens".to_owned())
    }
}

/// A company name: trimmed, 1..=200 characters, a single line without
/// control characters. Returns the trimmed name.
pub fn company_name(value: &str) -> Result<String, String> {
    free_text(value, MAX_COMPANY_NAME_LEN)
}

/// A Docker image reference: `[registry[:port]/]path[:tag][@sha256:<hex>]`.
///
/// * registry: DNS-style host name (`ghcr.io`, `localhost`) with an optional
///   port; recognised, as Docker does, when the first `/`-separated component
///   contains a `.` or a `:` or is `localhost`;
/// * path: components of lowercase letters and digits, joined inside a
///   component by Docker's separators (`.`, `_`, `__` or a run of `-`);
/// * tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`;
/// * digest: `sha256:` and 64 lowercase hex digits.
///
/// At most 255 characters in total.
pub fn image_ref(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > MAX_IMAGE_REF_LEN {
        return Err(format!("must be at most {MAX_IMAGE_REF_LEN} characters long"));
    }
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    if digest.is_some_and(|d| !is_sha256_digest(d)) {
        return Err(ERR_IMAGE.to_owned());
    }
    // A `:` after the last `/` starts the tag; an earlier one is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if tag.is_some_and(|t| !is_image_tag(t)) {
        return Err(ERR_IMAGE.to_owned());
    }

    let path = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            if !is_registry_host(first) {
                return Err(ERR_IMAGE.to_owned());
            }
            path
        }
        _ => name,
    };
    if !path.split('/').all(is_image_path_component) {
        return Err(ERR_IMAGE.to_owned());
    }
    // Docker refuses repository names that look like a 64-hex image ID.
    if path.len() == 64 && path.bytes().all(is_lower_hex) {
        return Err(ERR_IMAGE.to_owned());
    }
    Ok(())
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `sha256:` followed by exactly 64 lowercase hex digits.
fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(is_lower_hex))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_image_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes.len() <= MAX_IMAGE_TAG_LEN
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `host[:port]` where host is dot-separated components of
/// `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?` and port is 1..=65535.
fn is_registry_host(value: &str) -> bool {
    let (host, port) = match value.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let host_ok = host.len() <= MAX_DOMAIN_LEN
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.len() <= MAX_LABEL_LEN
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        });
    port_ok && host_ok
}

/// Docker's path component: `[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*`.
fn is_image_path_component(component: &str) -> bool {
    let is_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !(bytes.first().is_some_and(is_alnum) && bytes.last().is_some_and(is_alnum)) {
        return false;
    }
    // Split into maximal runs of separators and check each run.
    bytes
        .split(is_alnum)
        .filter(|run| !run.is_empty())
        .all(|run| matches!(run, b"." | b"_" | b"__") || run.iter().all(|b| *b == b'-'))
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, 1..=128 characters.
pub fn env_key(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_ENV_KEY_LEN {
        return Err(format!("must be 1 to {MAX_ENV_KEY_LEN} characters long"));
    }
    let bytes = value.as_bytes();
    let first_ok = bytes.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
    if first_ok && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
        Ok(())
    } else {
        Err("must start with a letter or underscore and contain only letters, digits and underscores".to_owned())
    }
}

/// An environment variable value: at most 4096 bytes, no NUL byte.
pub fn env_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_ENV_VALUE_BYTES {
        return Err(format!("must be at most {MAX_ENV_VALUE_BYTES} bytes long"));
    }
    if value.contains('\0') {
        return Err("must not contain NUL characters".to_owned());
    }
    Ok(())
}

/// An API token's display name: trimmed, 1..=100 characters, no control
/// characters. Returns the trimmed name.
pub fn token_name(value: &str) -> Result<String, String> {
    free_text(value, MAX_TOKEN_NAME_LEN)
}

/// The list of common passwords, lowercased, loaded once.
fn common_passwords() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_lowercase)
            .collect()
    })
}

/// A new password: 8..=128 characters (not bytes) and not one of the most
/// commonly used passwords (compared case-insensitively). Not trimmed:
/// surrounding spaces are part of the password.
pub fn password(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters long"));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!("must be at most {MAX_PASSWORD_LEN} characters long"));
    }
    if common_passwords().contains(&value.to_lowercase()) {
        return Err("is too common; choose a less predictable password".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shell, config and path metacharacters that must never get through.
    const METACHARS: &[&str] = &[
        ";", "$(", ")", "`", "'", "\"", " ", "\n", "\r", "\t", "{", "}", "../", "*", "|", "&", "<", ">", "\\", "\0",
        "#", "%", "!", "=", ",", "?", "[", "]",
    ];

    // ---- email ----------------------------------------------------------

    #[test]
    fn email_accepts_and_normalises() {
        assert_eq!(email("user@example.com").as_deref(), Ok("user@example.com"));
        assert_eq!(email("  User@Example.COM \n").as_deref(), Ok("user@example.com"));
        assert_eq!(email("first.last+tag@mail.example.co.uk").as_deref(), Ok("first.last+tag@mail.example.co.uk"));
        assert_eq!(email("O'Brien@example.ie").as_deref(), Ok("o'brien@example.ie"));
        assert_eq!(email("a!#$%&'*+/=?^_`{|}~-z@example.com").as_deref(), Ok("a!#$%&'*+/=?^_`{|}~-z@example.com"));
        assert_eq!(email("kunde@bücher.example").as_deref(), Ok("kunde@xn--bcher-kva.example"));
        assert_eq!(email("a@b.co").as_deref(), Ok("a@b.co"));
        assert_eq!(email("Admin@LocalHost").as_deref(), Ok("admin@localhost"));
    }

    #[test]
    fn email_rejects_malformed() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "user@",
            "user@@example.com",
            "a@b@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@example",
            "user@example.com.",
            "user@.example.com",
            "user@example..com",
            "user@-example.com",
            "user@exa_mple.com",
            "user@127.0.0.1",
            "user@[127.0.0.1]",
            "\"quoted\"@example.com",
            "<user@example.com>",
            "User <user@example.com>",
            "us er@example.com",
            "user@exa mple.com",
            "user\n@example.com",
            "user@example.com\nBcc: x@example.com",
            "user\r\n@example.com",
            "us\ter@example.com",
            "us\0er@example.com",
            "us(er)@example.com",
            "us,er@example.com",
            "us;er@example.com",
            "us\\er@example.com",
            "üser@example.com",
            "user@example.com;rm -rf /",
        ] {
            assert_eq!(email(bad), Err(ERR_EMAIL.to_owned()), "accepted {bad:?}");
        }
    }

    #[test]
    fn email_length_limits() {
        let local64 = "a".repeat(64);
        assert!(email(&format!("{local64}@example.com")).is_ok());
        let local65 = "a".repeat(65);
        assert!(email(&format!("{local65}@example.com")).is_err());

        // 64 + 1 + 189 = 254 characters: the maximum.
        let domain189 = format!("{}.{}.{}", "b".repeat(63), "c".repeat(63), "d".repeat(61));
        assert_eq!(domain189.len(), 189);
        let max = format!("{local64}@{domain189}");
        assert_eq!(max.len(), 254);
        assert_eq!(email(&max).as_deref(), Ok(max.as_str()));
        let domain190 = format!("{}.{}.{}", "b".repeat(63), "c".repeat(63), "d".repeat(62));
        let too_long = format!("{local64}@{domain190}");
        assert_eq!(too_long.len(), 255);
        assert!(email(&too_long).is_err());

        assert!(email(&"a".repeat(5000)).is_err());
    }

    // ---- domain ---------------------------------------------------------

    #[test]
    fn domain_accepts_and_normalises() {
        assert_eq!(domain("example.com").as_deref(), Ok("example.com"));
        assert_eq!(domain("  WWW.Example.COM  ").as_deref(), Ok("www.example.com"));
        assert_eq!(domain("example.com.").as_deref(), Ok("example.com"));
        assert_eq!(domain("a-b--c.example.org").as_deref(), Ok("a-b--c.example.org"));
        assert_eq!(domain("123.example.com").as_deref(), Ok("123.example.com"));
        assert_eq!(domain("a.b.c.d.example.net").as_deref(), Ok("a.b.c.d.example.net"));
        assert_eq!(domain("example.xn--p1ai").as_deref(), Ok("example.xn--p1ai"));
    }

    #[test]
    fn domain_converts_idn_to_punycode() {
        assert_eq!(domain("bücher.example").as_deref(), Ok("xn--bcher-kva.example"));
        assert_eq!(domain("BÜCHER.example").as_deref(), Ok("xn--bcher-kva.example"));
        assert_eq!(domain("xn--bcher-kva.example").as_deref(), Ok("xn--bcher-kva.example"));
        assert_eq!(domain("münchen.de").as_deref(), Ok("xn--mnchen-3ya.de"));
        assert_eq!(domain("пример.рф").as_deref(), Ok("xn--e1afmkfd.xn--p1ai"));
        assert_eq!(domain("例え.テスト").as_deref(), Ok("xn--r8jz45g.xn--zckzah"));
        // Full-width characters and the ideographic full stop are mapped by UTS #46.
        assert_eq!(domain("ｅｘａｍｐｌｅ。ｃｏｍ").as_deref(), Ok("example.com"));
    }

    #[test]
    fn domain_rejects_metacharacters() {
        for meta in METACHARS {
            let inner = format!("exa{meta}mple.com");
            assert!(domain(&inner).is_err(), "accepted {inner:?}");
            // Surrounding whitespace is trimmed by design; anything else must fail.
            if !meta.trim().is_empty() {
                for candidate in [format!("{meta}example.com"), format!("example.com{meta}")] {
                    assert!(domain(&candidate).is_err(), "accepted {candidate:?}");
                }
            }
        }
        for bad in [
            "example.com;reboot",
            "$(reboot).example.com",
            "`reboot`.example.com",
            "'example.com'",
            "\"example.com\"",
            "exa mple.com",
            "example.com\nserver_name evil.com",
            "example.com\r\nHost: evil.example",
            "{example}.com",
            "../etc/passwd",
            "../example.com",
            "example/../com",
            "*.example.com",
            "_dmarc.example.com",
            "exa_mple.com",
            "example.com:80",
            "user@example.com",
            "http://example.com",
            "example.com/",
            "例え。テスト\u{0000}",
            "exam\u{200B}ple.com\u{202E}",
        ] {
            assert!(domain(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn domain_rejects_bad_structure() {
        for bad in [
            "",
            " ",
            ".",
            "..",
            "com",
            "localhost",
            ".example.com",
            "example..com",
            "example.com..",
            "-example.com",
            "example-.com",
            "example.-com",
            "example.com-",
            "xn--.example",
        ] {
            assert!(domain(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn domain_rejects_ip_addresses() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1.",
            "127.1",
            "0x7f.0x1",
            "example.123",
            "example.1com",
            "::1",
            "[::1]",
            "[2001:db8::1]",
            "2001:db8::1",
        ] {
            assert!(domain(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(domain("10.0.0.1"), Err("must be a domain name, not an IP address".to_owned()));
    }

    #[test]
    fn domain_label_and_total_length() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        assert!(domain(&format!("{label63}.com")).is_ok());
        assert!(domain(&format!("{label64}.com")).is_err());
        assert!(domain(&format!("example.{label64}")).is_err());

        // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters: the maximum.
        let d253 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(d253.len(), 253);
        assert_eq!(domain(&d253).as_deref(), Ok(d253.as_str()));
        assert_eq!(domain(&format!("{d253}.")).as_deref(), Ok(d253.as_str()));

        let d254 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(62));
        assert_eq!(d254.len(), 254);
        assert_eq!(domain(&d254), Err("must be at most 253 characters long".to_owned()));

        assert!(domain(&"a.".repeat(3000)).is_err());
    }

    // ---- site_name ------------------------------------------------------

    #[test]
    fn site_name_accepts_slugs() {
        for good in ["a", "0", "blog", "my-site", "site-2", "a-b-c", "x--y", "9lives"] {
            assert_eq!(site_name(good), Ok(()), "refused {good:?}");
        }
        assert!(site_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn site_name_rejects_everything_else() {
        for bad in [
            "", "-a", "a-", "-", "My-Site", "UPPER", "my_site", "my.site", "my site", " a", "a ", "ü", "a\n", "..",
            "../a", "a/b", "*",
        ] {
            assert!(site_name(bad).is_err(), "accepted {bad:?}");
        }
        assert!(site_name(&"a".repeat(64)).is_err());
        for meta in METACHARS {
            let candidate = format!("ab{meta}cd");
            assert!(site_name(&candidate).is_err(), "accepted {candidate:?}");
        }
        assert_eq!(site_name("-a"), Err("must start and end with a lowercase letter or digit".to_owned()));
        assert_eq!(site_name("a_b"), Err("may only contain lowercase letters, digits and hyphens".to_owned()));
    }

    // ---- company_name / token_name ---------------------------------------

    #[test]
    fn company_name_trims_and_limits() {
        assert_eq!(company_name("  Acme, Inc.  ").as_deref(), Ok("Acme, Inc."));
        assert_eq!(company_name("Müller & Söhne GmbH").as_deref(), Ok("Müller & Söhne GmbH"));
        assert_eq!(company_name("株式会社テスト").as_deref(), Ok("株式会社テスト"));
        assert!(company_name(&"é".repeat(200)).is_ok());
        assert!(company_name(&"é".repeat(201)).is_err());
        assert_eq!(company_name(""), Err("must not be empty".to_owned()));
        assert!(company_name(" \t\n ").is_err());
        for bad in [
            "Acme\nInc",
            "Acme\r\nInc",
            "Acme\tInc",
            "Acme\0",
            "Acme\u{7f}",
            "Acme\u{85}Inc",
            "Acme\u{2028}Inc",
            "Acme\u{202E}cnI",
            "Acme\u{2066}Inc\u{2069}",
        ] {
            assert!(company_name(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn token_name_trims_and_limits() {
        assert_eq!(token_name(" CI deploy key ").as_deref(), Ok("CI deploy key"));
        assert!(token_name(&"x".repeat(100)).is_ok());
        assert!(token_name(&"x".repeat(101)).is_err());
        assert!(token_name("").is_err());
        assert!(token_name("   ").is_err());
        assert!(token_name("ci\nkey").is_err());
        assert!(token_name("ci\u{1b}[31mkey").is_err());
    }

    // ---- image_ref ------------------------------------------------------

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn image_ref_accepts_valid_references() {
        let with_digest = format!("nginx@{DIGEST}");
        let tag_and_digest = format!("ghcr.io/acme/app:v1.2@{DIGEST}");
        let max_tag = format!("nginx:{}", "t".repeat(128));
        for good in [
            "nginx",
            "nginx:latest",
            "nginx:1.27-alpine",
            "library/nginx",
            "docker.io/library/nginx:1.27",
            "ghcr.io/acme/app",
            "ghcr.io/acme/team/app:v2",
            "registry.example.com:5000/app:tag",
            "localhost/app",
            "localhost:5000/app:dev",
            "Registry.Example.com/app",
            "my-registry.local/a_b/c.d/e-f",
            "foo__bar",
            "foo---bar",
            "postgres:16.3",
            "app:_private",
            "app:V1.0-RC_2",
            "foo.bar",
            with_digest.as_str(),
            tag_and_digest.as_str(),
            max_tag.as_str(),
        ] {
            assert_eq!(image_ref(good), Ok(()), "refused {good:?}");
        }
    }

    #[test]
    fn image_ref_rejects_invalid_references() {
        let short_digest = format!("nginx@{}", &DIGEST[..DIGEST.len() - 1]);
        let upper_digest = format!("nginx@{}", DIGEST.to_uppercase().replace("SHA", "sha"));
        let md5_digest = "nginx@md5:0123456789abcdef0123456789abcdef".to_owned();
        let long_tag = format!("nginx:{}", "t".repeat(129));
        let too_long = format!("{}/app", "a".repeat(252));
        let hex_id = "0123456789abcdef".repeat(4);
        for bad in [
            "",
            "Nginx",
            "acme/App",
            "ghcr.io/Acme/app",
            "-nginx",
            "nginx-",
            "acme/-app",
            "_nginx",
            ".nginx",
            "nginx.",
            "a..b",
            "../nginx",
            "acme/../nginx",
            "./nginx",
            "a._b",
            "a___b",
            "a/",
            "/a",
            "a//b",
            "ghcr.io/",
            "nginx:",
            "nginx:-tag",
            "nginx:.tag",
            "nginx:ta g",
            "nginx:tag:again",
            "nginx@",
            "nginx@sha256:",
            "nginx@sha256:xyz",
            "nginx@latest",
            "nginx:1@sha256",
            "a@b@c",
            "registry.example.com:0/app",
            "registry.example.com:65536/app",
            "registry.example.com:port/app",
            "registry.example.com:/app",
            "-registry.example.com/app",
            "registry..example.com/app",
            "registry_x.example.com/app",
            "[::1]:5000/app",
            " nginx",
            "nginx ",
            "ng inx",
            "nginx\n",
            "nginx\t",
            "nginx;reboot",
            "nginx&&reboot",
            "nginx|sh",
            "$(reboot)",
            "`reboot`",
            "'nginx'",
            "\"nginx\"",
            "{nginx}",
            "nginx*",
            "ngïnx",
            short_digest.as_str(),
            upper_digest.as_str(),
            md5_digest.as_str(),
            long_tag.as_str(),
            too_long.as_str(),
            hex_id.as_str(),
        ] {
            assert!(image_ref(bad).is_err(), "accepted {bad:?}");
        }
        for meta in METACHARS {
            for candidate in [
                format!("ng{meta}inx"),
                format!("{meta}nginx"),
                format!("nginx:tag{meta}"),
                format!("reg{meta}.io/app"),
            ] {
                assert!(image_ref(&candidate).is_err(), "accepted {candidate:?}");
            }
        }
    }

    #[test]
    fn image_ref_length_limit() {
        let ok = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        assert_eq!(ok.len(), 255);
        assert_eq!(image_ref(&ok), Ok(()));
        let too_long = format!("{ok}c");
        assert!(image_ref(&too_long).is_err());
    }

    // ---- env_key / env_value --------------------------------------------

    #[test]
    fn env_key_grammar() {
        for good in ["A", "_", "PATH", "database_url", "_PRIVATE", "X1_Y2", "a9"] {
            assert_eq!(env_key(good), Ok(()), "refused {good:?}");
        }
        assert!(env_key(&"K".repeat(128)).is_ok());
        assert!(env_key(&"K".repeat(129)).is_err());
        for bad in ["", "1ABC", "A-B", "A.B", "A B", "A=B", " A", "A\n", "É", "A$", "$(A)", "A;B"] {
            assert!(env_key(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn env_value_limits() {
        assert_eq!(env_value(""), Ok(()));
        assert_eq!(env_value("postgres://u:p@db/x?ssl=true"), Ok(()));
        assert_eq!(env_value("multi\nline $(and) `meta` \"chars\""), Ok(()));
        assert!(env_value(&"v".repeat(4096)).is_ok());
        assert!(env_value(&"v".repeat(4097)).is_err());
        // 2048 two-byte characters = 4096 bytes; one more is over.
        assert!(env_value(&"é".repeat(2048)).is_ok());
        assert!(env_value(&"é".repeat(2049)).is_err());
        assert!(env_value("a\0b").is_err());
    }

    // ---- password -------------------------------------------------------

    #[test]
    fn password_length_counts_characters() {
        assert_eq!(password("Xk3#pq7"), Err("must be at least 8 characters long".to_owned()));
        assert_eq!(password("Xk3#pq7!"), Ok(()));
        // 8 characters but 16 bytes.
        assert_eq!(password("éàüöçñßø"), Ok(()));
        // 4 characters, 8+ bytes.
        assert!(password("éàüö").is_err());
        assert!(password(&"zQ".repeat(64)).is_ok());
        assert_eq!(password(&"zQ9".repeat(43)), Err("must be at most 128 characters long".to_owned()));
        assert!(password("").is_err());
    }

    #[test]
    fn password_refuses_common_ones() {
        let msg = Err("is too common; choose a less predictable password".to_owned());
        for common in [
            "password",
            "PASSWORD",
            "Password1",
            "12345678",
            "123456789",
            "qwertyuiop",
            "iloveyou",
            "P@ssw0rd",
            "sunshine",
            "Summer2024!",
        ] {
            assert_eq!(password(common), msg, "accepted {common:?}");
        }
        assert_eq!(password("correct horse battery staple"), Ok(()));
        // Surrounding spaces are part of the password, not trimmed.
        assert_eq!(password(" password "), Ok(()));
    }

    #[test]
    fn common_password_list_is_sane() {
        let list = common_passwords();
        assert!(list.len() >= 300, "only {} entries", list.len());
        assert!(list.iter().all(|p| p.chars().count() >= MIN_PASSWORD_LEN));
        assert!(list.iter().all(|p| *p == p.to_lowercase()));
    }
}
