//! Console sessions: signing in with the admin token gives the browser a
//! random session id in a `Secure; HttpOnly; SameSite=Strict` cookie, and
//! the page a CSRF token bound to that session, which it sends in
//! `X-CSRF-Token` on every change.
//!
//! Sessions live in memory (a restart signs everyone out), at most
//! [`MAX_SESSIONS`] at once (the oldest goes first), each for [`LIFETIME`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cookie::{Cookie, SameSite};
use http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "ws_console";
/// The header carrying the CSRF token on a change.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after signing in (no sliding renewal).
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once.
const MAX_SESSIONS: usize = 64;

struct Session {
    csrf: String,
    expires: Instant,
}

/// The signed-in sessions, by the SHA-256 of their id (a timing side
/// channel in the map lookup learns nothing about a live id).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

/// Who is calling, as far as the console can tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// No session cookie, or one for no live session.
    None,
    /// A live session; its CSRF token.
    Session { id_hash: [u8; 32], csrf: String },
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session: its id (for the cookie) and its CSRF token.
    pub fn create(&self) -> (String, String) {
        let id = random_hex();
        let csrf = random_hex();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(
            hash(&id),
            Session {
                csrf: csrf.clone(),
                expires: now + LIFETIME,
            },
        );
        (id, csrf)
    }

    /// The live session named by the request's cookie, if any.
    pub fn presented(&self, headers: &HeaderMap) -> Presented {
        let Some(id) = session_cookie(headers) else {
            return Presented::None;
        };
        let id_hash = hash(&id);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(&id_hash) {
            Some(s) if s.expires > Instant::now() => Presented::Session {
                id_hash,
                csrf: s.csrf.clone(),
            },
            Some(_) => {
                live.remove(&id_hash);
                Presented::None
            }
            None => Presented::None,
        }
    }

    /// Whether the session `id_hash` is still live.
    pub fn is_live(&self, id_hash: &[u8; 32]) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(id_hash).is_some_and(|s| s.expires > Instant::now())
    }

    /// Signs the session out.
    pub fn remove(&self, id_hash: &[u8; 32]) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id_hash);
    }
}

/// Whether the request's `X-CSRF-Token` is `expected` (constant time).
pub fn csrf_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(sent.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

/// The value of the `ws_console` cookie, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value for session `id`. Always `Secure`: browsers keep
/// Secure cookies from `http://127.0.0.1` and `http://localhost` (secure
/// contexts), and beyond loopback the console belongs behind TLS.
pub fn set_cookie(id: &str) -> String {
    Cookie::build((COOKIE, id.to_owned()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(LIFETIME.as_secs() as i64))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie() -> String {
    Cookie::build((COOKIE, ""))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_removed() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create();
        let headers = with_cookie(&format!("other=1; {COOKIE}={id}"));
        let Presented::Session { id_hash, csrf: found } = sessions.presented(&headers) else {
            panic!("the session is live");
        };
        assert_eq!(found, csrf);
        assert_eq!(
            sessions.presented(&with_cookie(&format!("{COOKIE}=nope"))),
            Presented::None
        );
        sessions.remove(&id_hash);
        assert_eq!(sessions.presented(&headers), Presented::None);
    }

    #[test]
    fn the_cookie_is_secure_httponly_strict() {
        let c = set_cookie("abc");
        for part in [
            "ws_console=abc",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=28800",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
    }

    #[test]
    fn csrf_must_match() {
        let mut headers = HeaderMap::new();
        assert!(!csrf_matches(&headers, "t"));
        headers.insert(CSRF_HEADER, "x".parse().unwrap());
        assert!(!csrf_matches(&headers, "t"));
        headers.insert(CSRF_HEADER, "t".parse().unwrap());
        assert!(csrf_matches(&headers, "t"));
    }
}
