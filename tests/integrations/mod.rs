mod dns;
mod mail;
