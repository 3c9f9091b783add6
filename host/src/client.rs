//! Who the client is, as the server decided: its address and the scheme it
//! used (`https` over TLS), or what a trusted proxy says when the app sets
//! Tornado's `xheaders`. The server puts a [`Client`] in each request's
//! extensions; the handler drivers hand it to the guest as `remote_ip` and
//! `protocol`.
//!
//! Plain data: this is the bottom layer.

use std::net::IpAddr;

use http::HeaderMap;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Tornado's `request.remote_ip`.
    pub remote_ip: IpAddr,
    /// Tornado's `request.protocol`: `http` or `https`.
    pub protocol: &'static str,
}

impl Client {
    /// The peer of a connection; `tls` when it came over TLS.
    pub fn direct(remote_ip: IpAddr, tls: bool) -> Client {
        Client {
            remote_ip,
            protocol: if tls { "https" } else { "http" },
        }
    }

    /// Tornado's `_apply_xheaders`: the address from `X-Real-Ip`, else the
    /// last hop of `X-Forwarded-For` that is not a `trusted` proxy (a value
    /// that is not an IP address is ignored); the scheme from `X-Scheme`,
    /// else `X-Forwarded-Proto` (its last entry; only `http` and `https`).
    pub fn with_xheaders(mut self, headers: &HeaderMap, trusted: &[IpAddr]) -> Client {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut candidate = header("x-forwarded-for").map(|forwarded| {
            let mut hops = forwarded.rsplit(',').map(str::trim);
            let mut last = hops.next().unwrap_or("");
            for hop in hops {
                if !last.parse().is_ok_and(|ip: IpAddr| trusted.contains(&ip)) {
                    break;
                }
                last = hop;
            }
            last
        });
        if let Some(real) = header("x-real-ip") {
            candidate = Some(real.trim());
        }
        if let Some(ip) = candidate.and_then(|c| c.parse::<IpAddr>().ok()) {
            self.remote_ip = ip;
        }
        let scheme = header("x-scheme").or_else(|| header("x-forwarded-proto"));
        match scheme.map(|s| s.rsplit(',').next().unwrap_or("").trim()) {
            Some("http") => self.protocol = "http",
            Some("https") => self.protocol = "https",
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    fn apply(pairs: &[(&'static str, &'static str)], trusted: &[IpAddr]) -> Client {
        Client::direct([10, 0, 0, 1].into(), false).with_xheaders(&headers(pairs), trusted)
    }

    #[test]
    fn tornado_xheaders() {
        let ip = |c: Client| c.remote_ip.to_string();
        assert_eq!(
            ip(apply(&[("x-forwarded-for", "1.2.3.4, 5.6.7.8")], &[])),
            "5.6.7.8"
        );
        let proxy: IpAddr = [5, 6, 7, 8].into();
        assert_eq!(
            ip(apply(&[("x-forwarded-for", "1.2.3.4, 5.6.7.8")], &[proxy])),
            "1.2.3.4"
        );
        assert_eq!(
            ip(apply(
                &[("x-real-ip", "9.9.9.9"), ("x-forwarded-for", "1.2.3.4")],
                &[]
            )),
            "9.9.9.9"
        );
        assert_eq!(ip(apply(&[("x-forwarded-for", "not-an-ip")], &[])), "10.0.0.1");
        assert_eq!(ip(apply(&[("x-real-ip", "::1")], &[])), "::1");
        assert_eq!(apply(&[("x-forwarded-proto", "https")], &[]).protocol, "https");
        assert_eq!(
            apply(&[("x-forwarded-proto", "http, https")], &[]).protocol,
            "https"
        );
        assert_eq!(
            apply(&[("x-scheme", "https"), ("x-forwarded-proto", "http")], &[]).protocol,
            "https"
        );
        assert_eq!(apply(&[("x-scheme", "gopher")], &[]).protocol, "http");
    }
}
