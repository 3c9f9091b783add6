//! Tornado's web helpers, once in the host for every guest language: the
//! app's `cookie_secret` and signed values ([`signed`]), XSRF tokens and
//! the cross-origin check ([`xsrf`]), templates ([`templates`]) and the
//! login URL. Built from the manifest's `[app]` table; the secret never
//! leaves the host.
//!
//! Not behind a trait: these are formats and files, with no second backend
//! to swap in (a cluster shares the secret through the manifest).

pub mod signed;
pub mod templates;
pub mod xsrf;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::manifest::{CookieKwargs, CookieSecret, Manifest};

pub use self::signed::Secret;
pub use self::templates::Templates;

/// The app's web settings.
#[derive(Debug, Default)]
pub struct Web {
    secret: Option<Secret>,
    pub xsrf: XsrfSettings,
    /// `Some(trusted_origins)` when `cross_origin_protection` is on.
    cross_origin: Option<Vec<String>>,
    login_url: Option<String>,
    templates: Option<Templates>,
}

/// `xsrf_cookies`, and the cookie the token lives in.
#[derive(Debug, Clone)]
pub struct XsrfSettings {
    pub enabled: bool,
    pub cookie_name: String,
    /// 2 (masked) or 1.
    pub version: u8,
    pub cookie: CookieKwargs,
}

impl Default for XsrfSettings {
    fn default() -> Self {
        XsrfSettings {
            enabled: false,
            cookie_name: "_xsrf".to_owned(),
            version: 2,
            cookie: CookieKwargs::default(),
        }
    }
}

/// What the checks before the guest read from a request.
pub struct UnsafeRequest<'a> {
    pub xsrf_cookie: Option<&'a str>,
    /// The `_xsrf` argument, else the `X-XSRFToken`, else the `X-CSRFToken` header.
    pub xsrf_presented: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
}

impl Web {
    /// The settings of `manifest`'s `[app]` (already checked by the manifest).
    pub fn from_manifest(manifest: &Manifest) -> Web {
        let app = &manifest.app;
        let key_version = app.key_version.as_ref().map(|v| *v.get_ref());
        let secret = app.cookie_secret.as_ref().map(|s| match s.get_ref() {
            CookieSecret::One(key) => Secret::One {
                key: key.as_bytes().to_vec(),
                key_version,
            },
            CookieSecret::Versioned(keys) => {
                let keys: BTreeMap<u32, Vec<u8>> = keys
                    .iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_bytes().to_vec())))
                    .collect();
                Secret::Versioned {
                    current: key_version.unwrap_or_else(|| *keys.keys().next_back().unwrap_or(&0)),
                    keys,
                }
            }
        });
        let xsrf = XsrfSettings {
            enabled: app.xsrf_cookies.unwrap_or(false),
            cookie_name: app.xsrf_cookie_name.clone().unwrap_or_else(|| "_xsrf".to_owned()),
            version: app.xsrf_cookie_version.as_ref().map_or(2, |v| *v.get_ref()),
            cookie: app.xsrf_cookie_kwargs.clone().unwrap_or_default(),
        };
        Web {
            secret,
            xsrf,
            cross_origin: app
                .cross_origin_protection
                .unwrap_or(false)
                .then(|| app.trusted_origins.clone().unwrap_or_default()),
            login_url: app.login_url.clone(),
            templates: app
                .template_path
                .as_ref()
                .map(|p| Templates::new(manifest.dir.join(p))),
        }
    }

    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    pub fn login_url(&self) -> Option<&str> {
        self.login_url.as_deref()
    }

    pub fn templates(&self) -> Option<&Templates> {
        self.templates.as_ref()
    }

    /// Whether unsafe requests are checked before the guest runs.
    pub fn checks_unsafe_requests(&self) -> bool {
        self.xsrf.enabled || self.cross_origin.is_some()
    }

    /// Tornado's `_cross_origin_protection` for a method other than GET,
    /// HEAD and OPTIONS: the XSRF token (`xsrf_cookies`), then the origin
    /// (`cross_origin_protection`). The error is the log message of the 403.
    pub fn check_unsafe_request(&self, req: &UnsafeRequest<'_>) -> Result<(), String> {
        if self.xsrf.enabled {
            xsrf::check(req.xsrf_cookie, req.xsrf_presented, now())?;
        }
        if let Some(trusted) = &self.cross_origin {
            xsrf::check_cross_origin(req.sec_fetch_site, req.origin, req.host, trusted)?;
        }
        Ok(())
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch, with the fraction (the expiry check's clock).
pub fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
