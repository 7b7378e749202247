//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): a
//! delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`, which holds `v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the endpoint's secret. Secrets are
//! `whsec_` and the base64 of their bytes. While a secret is rotated, a
//! delivery is signed with each live secret, space-separated, so receivers
//! holding either verify it.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a generated secret.
const SECRET_BYTES: usize = 32;
/// The fewest bytes a secret may have.
const MIN_SECRET_BYTES: usize = 16;
/// The most bytes a secret may have.
const MAX_SECRET_BYTES: usize = 64;

/// An endpoint's signing secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with {SECRET_PREFIX}")]
    Prefix,
    #[error("a webhook secret is {SECRET_PREFIX} and base64")]
    Encoding,
    #[error("a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")]
    Length,
}

impl Secret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads `whsec_…`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::Encoding)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(bytes))
    }

    /// As shown once to the admin who made it, and stored.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `v1,…` signature of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The headers of a delivery with `id` at `timestamp`, signed with each of
/// `secrets` (more than one while a secret is rotated).
pub fn headers(
    secrets: &[Secret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect();
    [
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries; the
    /// signature also checked with Python's `hmac` module.
    #[test]
    fn signs_the_reference_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_part_is_signed() {
        let secret = Secret::generate();
        let base = secret.sign("msg_1", 1_700_000_000, b"{}");
        assert_ne!(secret.sign("msg_2", 1_700_000_000, b"{}"), base);
        assert_ne!(secret.sign("msg_1", 1_700_000_001, b"{}"), base);
        assert_ne!(secret.sign("msg_1", 1_700_000_000, b"{ }"), base);
        assert_ne!(Secret::generate().sign("msg_1", 1_700_000_000, b"{}"), base);
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let secret = Secret::generate();
        let shown = secret.expose();
        assert!(shown.starts_with(SECRET_PREFIX));
        assert_eq!(Secret::parse(&shown), Ok(secret.clone()));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::Prefix)
        );
        assert_eq!(
            Secret::parse("whsec_not base64!"),
            Err(SecretError::Encoding)
        );
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SecretError::Length));
    }

    #[test]
    fn a_rotation_signs_with_each_live_secret() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let [id, timestamp, signature] =
            headers(&[old.clone(), new.clone()], "msg_9", 1_700_000_000, b"{}");
        assert_eq!(id, ("webhook-id", "msg_9".to_owned()));
        assert_eq!(timestamp, ("webhook-timestamp", "1700000000".to_owned()));
        let signatures: Vec<&str> = signature.1.split(' ').collect();
        assert_eq!(
            signatures,
            [
                old.sign("msg_9", 1_700_000_000, b"{}"),
                new.sign("msg_9", 1_700_000_000, b"{}")
            ]
        );
    }
}
