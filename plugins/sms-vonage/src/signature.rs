//! Vonage's signed webhooks. Every parameter but `sig`, sorted by name,
//! each as `&name=value` with any `&` or `=` in the value made `_`; then
//! either the MD5 of that and the signature secret (`md5hash`, the
//! accounts' default) or an HMAC of it keyed by the secret (`md5`, `sha1`,
//! `sha256`, `sha512`), in hex, as `sig`. A signed `timestamp` (Unix
//! seconds) within five minutes keeps a captured callback from being sent
//! again.

use crossgate_plugin_sdk::webhook::{constant_time_eq, fresh, hex_decode, now_secs};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// How far a signed timestamp may be from now, either way.
const WINDOW_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Md5Hash,
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Method {
    pub fn parse(name: &str) -> Option<Method> {
        match name {
            "md5hash" => Some(Method::Md5Hash),
            "md5" => Some(Method::Md5),
            "sha1" => Some(Method::Sha1),
            "sha256" => Some(Method::Sha256),
            "sha512" => Some(Method::Sha512),
            _ => None,
        }
    }
}

/// The string Vonage signs.
fn signed(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect()
}

/// The signature of `params` under `secret`.
pub fn sign(params: &[(String, String)], secret: &str, method: Method) -> Vec<u8> {
    let text = signed(params);
    fn hmac<M: Mac + hmac::digest::KeyInit>(secret: &str, text: &str) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
    match method {
        Method::Md5Hash => Md5::digest(format!("{text}{secret}")).to_vec(),
        Method::Md5 => hmac::<Hmac<Md5>>(secret, &text),
        Method::Sha1 => hmac::<Hmac<sha1::Sha1>>(secret, &text),
        Method::Sha256 => hmac::<Hmac<sha2::Sha256>>(secret, &text),
        Method::Sha512 => hmac::<Hmac<sha2::Sha512>>(secret, &text),
    }
}

/// Whether Vonage signed `params` with `secret`, recently.
pub fn verify(params: &[(String, String)], secret: &str, method: Method) -> Result<(), String> {
    verify_at(params, secret, method, now_secs())
}

pub fn verify_at(
    params: &[(String, String)],
    secret: &str,
    method: Method,
    now: i64,
) -> Result<(), String> {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let given = param("sig").ok_or("unsigned: no sig parameter")?;
    let given = hex_decode(given).ok_or("sig is not hex")?;
    if !constant_time_eq(&given, &sign(params, secret, method)) {
        return Err("sig does not match".into());
    }
    let timestamp: i64 = param("timestamp")
        .ok_or("no signed timestamp")?
        .parse()
        .map_err(|_| "timestamp is not Unix seconds")?;
    fresh(timestamp, now, WINDOW_SECS)
}
