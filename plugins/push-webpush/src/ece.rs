//! RFC 8291 message encryption for Web Push (`Content-Encoding: aes128gcm`,
//! RFC 8188), as one record.
//!
//! The browser's `p256dh` key and `auth` secret come from its subscription;
//! a fresh key pair and salt per message make every body unlinkable.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::PublicKey;
use p256::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;

/// The record size announced in the header; one record holds the whole payload.
const RECORD_SIZE: u32 = 4096;
/// salt (16) + record size (4) + key id length (1) + key id (65).
const HEADER_LEN: usize = 86;
const TAG_LEN: usize = 16;
/// The largest payload that fits one 4096-byte record with its padding delimiter and tag.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - TAG_LEN - 1 - HEADER_LEN;

#[derive(Debug, PartialEq, Eq)]
pub enum EceError {
    BadSubscriptionKey,
    BadAuthSecret,
    TooLarge(usize),
}

impl std::fmt::Display for EceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EceError::BadSubscriptionKey => f.write_str("p256dh is not a P-256 public key"),
            EceError::BadAuthSecret => f.write_str("auth is not a 16-byte secret"),
            EceError::TooLarge(n) => write!(f, "payload of {n} bytes exceeds {MAX_PAYLOAD}"),
        }
    }
}

/// Encrypt `plaintext` for the subscription (`ua_public`, `auth_secret`)
/// with the sender's ephemeral key `as_secret` and a random `salt`.
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    as_secret: &p256::SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, EceError> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(EceError::TooLarge(plaintext.len()));
    }
    let ua_key = PublicKey::from_sec1_bytes(ua_public).map_err(|_| EceError::BadSubscriptionKey)?;
    if auth_secret.len() != 16 {
        return Err(EceError::BadAuthSecret);
    }
    let as_public = as_secret.public_key().to_encoded_point(false);
    let as_public = as_public.as_bytes();
    let shared = diffie_hellman(as_secret.to_nonzero_scalar(), ua_key.as_affine());

    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF length");

    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF length");

    // The last (and only) record ends with the 0x02 delimiter.
    let mut padded = Vec::with_capacity(plaintext.len() + 1);
    padded.extend_from_slice(plaintext);
    padded.push(2);
    let ciphertext = Aes128Gcm::new(&cek.into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &padded,
                aad: b"",
            },
        )
        .expect("AES-GCM encryption of a bounded record cannot fail");

    let mut body = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&ciphertext);
    Ok(body)
}
