mod dns;
mod mail;
mod tls;
