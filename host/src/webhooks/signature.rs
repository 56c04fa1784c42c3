//! The `Export-Host-Signature` header: `t=<unix seconds>,v1=<hex>`, where
//! the hex is the HMAC-SHA256 of `<t>.<body>` under `WEBHOOK_SECRET`. The
//! time is signed with the body so a receiver can refuse an old delivery
//! replayed at it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookSecret;

/// The header's name.
pub const HEADER: &str = "Export-Host-Signature";

/// The header value for `body` sent at `unix_seconds`.
pub fn sign(secret: &WebhookSecret, unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &WebhookSecret, unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_time_and_the_body() {
        let secret = WebhookSecret::parse("0123456789abcdef0123").unwrap();
        let header = sign(&secret, 1_700_000_000, b"{\"a\":1}");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"0123456789abcdef0123").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
        assert_ne!(header, sign(&secret, 1_700_000_001, b"{\"a\":1}"));
    }
}
