//! Copies of a request's head that own their bytes.
//!
//! hyper parses a request head in place: the URI and every header value are
//! slices of its read buffer (8 KiB), so whatever keeps them keeps that
//! buffer, and hyper reads the connection's next bytes into a new one. A
//! request that stays for long (a parked long poll, a WebSocket's request)
//! keeps these copies instead: a few hundred bytes rather than 8 KiB.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Uri};

/// `uri` in bytes of its own.
pub fn detached_uri(uri: &Uri) -> Uri {
    let text = Bytes::from(uri.to_string());
    // It was a valid URI: parsing its own text cannot fail.
    Uri::from_maybe_shared(text).unwrap_or_else(|_| uri.clone())
}

/// `headers` with every value in bytes of its own (names are shared
/// constants or copies already).
pub fn detached_headers(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut owned = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(value.as_bytes()))
            .expect("a header value's bytes are a valid header value");
        owned.set_sensitive(value.is_sensitive());
        copy.append(name.clone(), owned);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_equal_and_own_their_bytes() {
        let head = Bytes::from_static(b"/wait?topic=news&after=3");
        let uri = Uri::from_maybe_shared(head.clone()).unwrap();
        assert_eq!(detached_uri(&uri), uri);
        let absolute: Uri = "http://example.com:8080/a?b=c".parse().unwrap();
        assert_eq!(detached_uri(&absolute), absolute);

        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("a=1"));
        headers.append("cookie", HeaderValue::from_static("b=2"));
        let mut secret = HeaderValue::from_static("Bearer x");
        secret.set_sensitive(true);
        headers.insert("authorization", secret);
        let copy = detached_headers(&headers);
        assert_eq!(copy, headers);
        assert_eq!(copy.get_all("cookie").iter().count(), 2);
        assert!(copy["authorization"].is_sensitive());
    }
}
