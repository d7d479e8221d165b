//! Berth's edges to outside services, each behind a small trait with one real implementation
//! (and an explicit "off" choice for setups that handle it elsewhere): DNS through PowerDNS's
//! HTTP API, mail through SMTP. Tests drive the real services (pdns-server, an SMTP sink).

pub mod dns;
pub mod mail;
pub mod tls;
