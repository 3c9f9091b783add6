//! Tornado's XSRF tokens (`xsrf_token`, `_decode_xsrf_token`,
//! `check_xsrf_cookie` in tornado/web.py) and Tornado 6.6's
//! `cross_origin_protection` (`_check_cross_origin`), byte for byte.
//!
//! A v2 token is `2|MASK|MASKED|TIMESTAMP`: a random 4-byte mask (hex), the
//! 16-byte token XOR the mask (hex), seconds since the epoch. A fresh mask
//! per page makes the token differ on every response (BREACH), while the
//! token underneath, compared in constant time, stays the cookie's.

use subtle::ConstantTimeEq;

/// A token as decoded from a cookie or a form: its format version, the raw
/// token, and its timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawToken {
    pub version: u32,
    pub token: Vec<u8>,
    pub timestamp: i64,
}

/// Tornado's `_decode_xsrf_token`: `None` when the value cannot be read
/// (an unknown version, bad hex, a wrong number of fields).
pub fn decode_token(value: &str, now: i64) -> Option<RawToken> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let versioned = digits > 0 && !value.starts_with('0') && value.as_bytes().get(digits) == Some(&b'|');
    if versioned {
        if &value[..digits] != "2" {
            return None;
        }
        let fields: Vec<&str> = value.split('|').collect();
        let [_, mask, masked, timestamp] = fields[..] else {
            return None;
        };
        let mask = hex::decode(mask).ok()?;
        let masked = hex::decode(masked).ok()?;
        if mask.is_empty() && !masked.is_empty() {
            return None;
        }
        let timestamp = timestamp.trim().parse().ok()?;
        return Some(RawToken {
            version: 2,
            token: apply_mask(&mask, &masked),
            timestamp,
        });
    }
    // Version 1: the token in hex, or (older still) as it is.
    let token = hex::decode(value).unwrap_or_else(|_| value.as_bytes().to_vec());
    Some(RawToken {
        version: 1,
        token,
        timestamp: now,
    })
}

/// The token as the page shows it: v2 masked with `mask`, or v1 plain hex.
pub fn encode_token(raw: &RawToken, output_version: u8, mask: [u8; 4]) -> String {
    if output_version == 1 {
        return hex::encode(&raw.token);
    }
    format!(
        "2|{}|{}|{}",
        hex::encode(mask),
        hex::encode(apply_mask(&mask, &raw.token)),
        raw.timestamp
    )
}

/// A new raw token (16 random bytes) for a visitor without a usable cookie.
pub fn new_raw_token(now: i64) -> RawToken {
    let mut token = vec![0; 16];
    getrandom::fill(&mut token).expect("the OS random source works");
    RawToken {
        version: 0,
        token,
        timestamp: now,
    }
}

pub fn random_mask() -> [u8; 4] {
    let mut mask = [0; 4];
    getrandom::fill(&mut mask).expect("the OS random source works");
    mask
}

/// Tornado's `_websocket_mask`: XOR with the mask repeated.
fn apply_mask(mask: &[u8], data: &[u8]) -> Vec<u8> {
    data.iter().zip(mask.iter().cycle()).map(|(d, m)| d ^ m).collect()
}

/// Tornado's `check_xsrf_cookie`: `presented` (the `_xsrf` argument, else
/// the `X-XSRFToken`, else the `X-CSRFToken` header) must carry the token of
/// `cookie`. The error is Tornado's log message (the client gets 403).
pub fn check(cookie: Option<&str>, presented: Option<&str>, now: i64) -> Result<(), &'static str> {
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return Err("'_xsrf' argument missing from POST");
    };
    let Some(presented) = decode_token(presented, now) else {
        return Err("'_xsrf' argument has invalid format");
    };
    if presented.token.is_empty() {
        return Err("'_xsrf' argument has invalid format");
    }
    // No cookie (or an unreadable one): Tornado compares with a fresh random
    // token, which never matches.
    let Some(expected) = cookie
        .filter(|c| !c.is_empty())
        .and_then(|c| decode_token(c, now))
    else {
        return Err("XSRF cookie does not match POST argument");
    };
    if bool::from(presented.token.ct_eq(&expected.token)) {
        Ok(())
    } else {
        Err("XSRF cookie does not match POST argument")
    }
}

/// Tornado 6.6's `_check_cross_origin` for an unsafe method: same-origin or
/// direct navigation (`Sec-Fetch-Site`), else an `Origin` that is the `Host`
/// or one of `trusted`; a request with neither header (not a browser)
/// passes. The error is Tornado's log message.
pub fn check_cross_origin(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
    trusted: &[String],
) -> Result<(), String> {
    let trusted = |o: &str| trusted.iter().any(|t| t == o);
    match sec_fetch_site {
        Some("same-origin" | "none") => Ok(()),
        None => match origin {
            None => Ok(()),
            Some(o) if origin_matches_host(o, host) || trusted(o) => Ok(()),
            Some(o) => Err(format!("Origin {o:?} not allowed")),
        },
        Some(site) => match origin {
            Some(o) if trusted(o) => Ok(()),
            o => Err(format!("Sec-Fetch-Site {site} & origin {o:?} not allowed")),
        },
    }
}

/// The origin's `host[:port]` equals the `Host` header (case-insensitive).
fn origin_matches_host(origin: &str, host: Option<&str>) -> bool {
    let netloc = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let netloc = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    netloc.eq_ignore_ascii_case(host.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_decode_to_the_cookies_token() {
        let raw = new_raw_token(1_700_000_000);
        let a = encode_token(&raw, 2, [1, 2, 3, 4]);
        let b = encode_token(&raw, 2, [9, 8, 7, 6]);
        assert_ne!(a, b, "a fresh mask changes the page's token");
        assert_eq!(decode_token(&a, 0).unwrap().token, raw.token);
        assert!(check(Some(&a), Some(&b), 0).is_ok());
        assert!(
            check(Some(&hex::encode(&raw.token)), Some(&b), 0).is_ok(),
            "v1 cookie"
        );
    }

    #[test]
    fn missing_wrong_and_malformed_tokens_fail() {
        let raw = new_raw_token(1);
        let cookie = encode_token(&raw, 2, [1, 2, 3, 4]);
        let other = encode_token(&new_raw_token(1), 2, [1, 2, 3, 4]);
        assert!(check(Some(&cookie), None, 0).is_err());
        assert!(check(Some(&cookie), Some(""), 0).is_err());
        assert!(check(Some(&cookie), Some(&other), 0).is_err());
        assert!(check(None, Some(&cookie), 0).is_err());
        assert!(check(Some(&cookie), Some("2|zz|zz|1"), 0).is_err());
        assert!(check(Some(&cookie), Some("3|a|b|c"), 0).is_err());
    }

    #[test]
    fn cross_origin_follows_tornado() {
        let host = Some("example.com:8888");
        assert!(check_cross_origin(Some("same-origin"), None, host, &[]).is_ok());
        assert!(check_cross_origin(None, None, host, &[]).is_ok());
        assert!(check_cross_origin(None, Some("http://example.com:8888"), host, &[]).is_ok());
        assert!(check_cross_origin(None, Some("http://evil.com"), host, &[]).is_err());
        assert!(check_cross_origin(Some("cross-site"), Some("http://evil.com"), host, &[]).is_err());
        let trusted = ["http://evil.com".to_owned()];
        assert!(check_cross_origin(Some("cross-site"), Some("http://evil.com"), host, &trusted).is_ok());
    }
}
