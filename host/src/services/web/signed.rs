//! Tornado's signed values (`create_signed_value` / `decode_signed_value`
//! in tornado/web.py), byte for byte: a cookie signed by a Tornado app with
//! the same `cookie_secret` reads here, and ours reads there.
//!
//! v2 (what we write): `2|1:KV|10:TIMESTAMP|NLEN:NAME|VLEN:BASE64VALUE|SIG`,
//! where SIG is the hex HMAC-SHA256 of everything before it (the last pipe
//! included). v1 (read only, Tornado before 3.2): `BASE64VALUE|TIMESTAMP|SIG`,
//! SIG the hex HMAC-SHA1 of name, value and timestamp. Signatures are
//! compared in constant time.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The app's `cookie_secret`: one key, or versioned keys and the one that
/// signs (`key_version`). `Debug` never shows a key.
#[derive(Clone)]
pub enum Secret {
    One {
        key: Vec<u8>,
        key_version: Option<u32>,
    },
    Versioned {
        keys: BTreeMap<u32, Vec<u8>>,
        current: u32,
    },
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    fn signing_key(&self) -> (&[u8], u32) {
        match self {
            Secret::One { key, key_version } => (key, key_version.unwrap_or(0)),
            Secret::Versioned { keys, current } => (&keys[current], *current),
        }
    }
}

/// Tornado's `create_signed_value(secret, name, value, version=2)` at `now`
/// (seconds since the epoch).
pub fn create_signed_value(secret: &Secret, name: &str, value: &[u8], now: i64) -> String {
    let (key, key_version) = secret.signing_key();
    let field = |s: &str| format!("{}:{s}", s.len());
    let to_sign = format!(
        "2|{}|{}|{}|{}|",
        field(&key_version.to_string()),
        field(&now.to_string()),
        field(name),
        field(&STANDARD.encode(value)),
    );
    let signature = signature_v2(key, to_sign.as_bytes());
    to_sign + &signature
}

/// Tornado's `decode_signed_value`: the value, or `None` when it is
/// missing, malformed, tampered with, signed for another name, older than
/// `max_age_days`, or of a version below `min_version`.
pub fn decode_signed_value(
    secret: &Secret,
    name: &str,
    value: &str,
    max_age_days: f64,
    min_version: u32,
    now: f64,
) -> Option<Vec<u8>> {
    let value = value.as_bytes();
    if value.is_empty() {
        return None;
    }
    let version = version_of(value);
    if version < min_version {
        return None;
    }
    match version {
        1 => decode_v1(secret, name, value, max_age_days, now),
        2 => decode_v2(secret, name, value, max_age_days, now),
        _ => None,
    }
}

/// The key version a v2 value was signed with (Tornado's
/// `get_signature_key_version`), without checking the signature.
#[cfg(test)]
fn key_version(value: &str) -> Option<u32> {
    let value = value.as_bytes();
    if version_of(value) != 2 {
        return None;
    }
    let (kv, _) = consume_field(&value[2..])?;
    std::str::from_utf8(kv).ok()?.parse().ok()
}

/// `^([1-9][0-9]*)\|`: the format version; 1 when there is none (or > 999).
fn version_of(value: &[u8]) -> u32 {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || value[0] == b'0' || value.get(digits) != Some(&b'|') {
        return 1;
    }
    match std::str::from_utf8(&value[..digits])
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
    {
        Some(v) if v <= 999 => v,
        _ => 1,
    }
}

fn decode_v1(secret: &Secret, name: &str, value: &[u8], max_age_days: f64, now: f64) -> Option<Vec<u8>> {
    // Tornado refuses versioned keys for v1 values.
    let Secret::One { key, .. } = secret else {
        return None;
    };
    let parts: Vec<&[u8]> = value.split(|&b| b == b'|').collect();
    let [encoded, timestamp, passed] = parts[..] else {
        return None;
    };
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.update(encoded);
    mac.update(timestamp);
    let expected = hex::encode(mac.finalize().into_bytes());
    if !bool::from(passed.ct_eq(expected.as_bytes())) {
        return None;
    }
    let ts: i64 = std::str::from_utf8(timestamp).ok()?.parse().ok()?;
    if (ts as f64) < now - max_age_days * 86400.0 || (ts as f64) > now + 31.0 * 86400.0 {
        return None;
    }
    // A leading zero means parts of the value were moved into the timestamp.
    if timestamp.starts_with(b"0") {
        return None;
    }
    STANDARD.decode(encoded).ok()
}

/// Tornado's `_consume_field`: `LEN:BYTES|rest`.
fn consume_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = s.iter().position(|&b| b == b':')?;
    let n: usize = std::str::from_utf8(&s[..colon]).ok()?.trim().parse().ok()?;
    let rest = &s[colon + 1..];
    if rest.get(n) != Some(&b'|') {
        return None;
    }
    Some((&rest[..n], &rest[n + 1..]))
}

fn decode_v2(secret: &Secret, name: &str, value: &[u8], max_age_days: f64, now: f64) -> Option<Vec<u8>> {
    let rest = value.get(2..)?;
    let (key_version, rest) = consume_field(rest)?;
    let (timestamp, rest) = consume_field(rest)?;
    let (name_field, rest) = consume_field(rest)?;
    let (value_field, passed) = consume_field(rest)?;
    let key_version: u32 = std::str::from_utf8(key_version).ok()?.parse().ok()?;
    let signed = &value[..value.len() - passed.len()];
    let key = match secret {
        Secret::One { key, .. } => key,
        Secret::Versioned { keys, .. } => keys.get(&key_version)?,
    };
    let expected = signature_v2(key, signed);
    if !bool::from(passed.ct_eq(expected.as_bytes())) {
        return None;
    }
    if name_field != name.as_bytes() {
        return None;
    }
    let ts: i64 = std::str::from_utf8(timestamp).ok()?.parse().ok()?;
    if (ts as f64) < now - max_age_days * 86400.0 {
        return None;
    }
    STANDARD.decode(value_field).ok()
}

fn signature_v2(key: &[u8], signed: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signed);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str) -> Secret {
        Secret::One {
            key: key.as_bytes().to_vec(),
            key_version: None,
        }
    }

    // tornado/test/web_test.py, SignedValueTest: the same secret, clock and
    // expected strings.
    const SECRET: &str = "It's a secret to everybody";
    const PRESENT: i64 = 1300000000;

    #[test]
    fn matches_tornados_known_v2_value() {
        let signed = create_signed_value(&one(SECRET), "key", b"value", PRESENT);
        assert_eq!(
            signed,
            "2|1:0|10:1300000000|3:key|8:dmFsdWU=|3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"
        );
        let decoded = decode_signed_value(&one(SECRET), "key", &signed, 31.0, 1, PRESENT as f64);
        assert_eq!(decoded.as_deref(), Some(&b"value"[..]));
    }

    #[test]
    fn reads_tornados_known_v1_value() {
        let v1 = "dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f";
        let decoded = decode_signed_value(&one(SECRET), "key", v1, 31.0, 1, PRESENT as f64);
        assert_eq!(decoded.as_deref(), Some(&b"value"[..]));
        assert_eq!(
            decode_signed_value(&one(SECRET), "key", v1, 31.0, 2, PRESENT as f64),
            None
        );
    }

    #[test]
    fn tampered_expired_renamed_and_wrong_key_read_as_none() {
        let s = one(SECRET);
        let signed = create_signed_value(&s, "key", b"value", PRESENT);
        let now = PRESENT as f64;
        assert_eq!(decode_signed_value(&s, "other", &signed, 31.0, 1, now), None);
        assert_eq!(
            decode_signed_value(&s, "key", &signed, 31.0, 1, now + 32.0 * 86400.0),
            None
        );
        assert_eq!(
            decode_signed_value(&one("another"), "key", &signed, 31.0, 1, now),
            None
        );
        let tampered = signed.replace("8:dmFsdWU=", "8:dmFsdWf=");
        assert_eq!(decode_signed_value(&s, "key", &tampered, 31.0, 1, now), None);
        assert_eq!(decode_signed_value(&s, "key", "", 31.0, 1, now), None);
        assert_eq!(decode_signed_value(&s, "key", "2|garbage", 31.0, 1, now), None);
    }

    #[test]
    fn versioned_keys_sign_with_the_current_and_read_the_others() {
        let keys: BTreeMap<u32, Vec<u8>> = [(0, b"zero".to_vec()), (1, b"one".to_vec())].into();
        let old = Secret::Versioned {
            keys: keys.clone(),
            current: 0,
        };
        let new = Secret::Versioned { keys, current: 1 };
        let signed = create_signed_value(&old, "n", b"v", PRESENT);
        assert_eq!(key_version(&signed), Some(0));
        let now = PRESENT as f64;
        assert_eq!(
            decode_signed_value(&new, "n", &signed, 31.0, 1, now).as_deref(),
            Some(&b"v"[..])
        );
        assert!(create_signed_value(&new, "n", b"v", PRESENT).starts_with("2|1:1|"));
    }
}
