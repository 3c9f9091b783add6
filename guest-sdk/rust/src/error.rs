//! Tornado's `HTTPError`: the error a handler returns to end a request.

use std::fmt;

use crate::bindings::raw_types;
use crate::status::reason_phrase;

/// The result of a handler method: `Ok(())` or an [`HttpError`].
///
/// The error type defaults to `HttpError`, so `Result<T, E>` still works for
/// other errors.
///
/// ```
/// use waterspout_sdk::{HttpError, Result};
///
/// fn parse_id(raw: &str) -> Result<u32> {
///     raw.parse().map_err(|_| HttpError::new(400).with_log_message(format!("bad id {raw:?}")))
/// }
/// assert_eq!(parse_id("7"), Ok(7));
/// assert_eq!(parse_id("x").unwrap_err().status, 400);
/// ```
pub type Result<T, E = HttpError> = std::result::Result<T, E>;

/// An HTTP error response, as Tornado's `HTTPError(status, log_message, reason=...)`.
///
/// Returning it from `prepare` or a verb makes the host reset the response,
/// set `status` and call the handler's `write_error`. `reason` is shown to the
/// client (in the status line and the default error page) and defaults to the
/// standard phrase; `log_message` goes only to the server log.
///
/// ```
/// use waterspout_sdk::HttpError;
///
/// let err = HttpError::new(404)
///     .with_reason("No Such Widget")
///     .with_log_message("widget 7 is not in the catalogue");
/// assert_eq!(err.status, 404);
/// assert_eq!(err.to_string(), "HTTP 404: No Such Widget (widget 7 is not in the catalogue)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status code, e.g. 404.
    pub status: u16,
    /// The client-facing reason phrase; `None` means the standard one.
    pub reason: Option<String>,
    /// Detail for the server log only, never sent to the client.
    pub log_message: Option<String>,
}

impl HttpError {
    /// An error with `status` and the standard reason phrase.
    ///
    /// ```
    /// let err = waterspout_sdk::HttpError::new(403);
    /// assert_eq!(err.reason_phrase(), "Forbidden");
    /// ```
    pub fn new(status: u16) -> Self {
        Self {
            status,
            reason: None,
            log_message: None,
        }
    }

    /// Replaces the standard reason phrase shown to the client.
    ///
    /// ```
    /// let err = waterspout_sdk::HttpError::new(418).with_reason("Short And Stout");
    /// assert_eq!(err.reason_phrase(), "Short And Stout");
    /// ```
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a message for the server log (never sent to the client).
    ///
    /// ```
    /// let err = waterspout_sdk::HttpError::new(500).with_log_message("database down");
    /// assert_eq!(err.log_message.as_deref(), Some("database down"));
    /// ```
    pub fn with_log_message(mut self, message: impl Into<String>) -> Self {
        self.log_message = Some(message.into());
        self
    }

    /// The reason phrase the client sees: the custom one, else the standard one.
    ///
    /// ```
    /// assert_eq!(waterspout_sdk::HttpError::new(404).reason_phrase(), "Not Found");
    /// ```
    pub fn reason_phrase(&self) -> &str {
        self.reason
            .as_deref()
            .unwrap_or_else(|| reason_phrase(self.status))
    }

    /// Tornado's `MissingArgumentError`: a 400 naming the missing argument.
    pub(crate) fn missing_argument(name: &str) -> Self {
        let message = format!("Missing argument {name}");
        Self::new(400)
            .with_reason(message.clone())
            .with_log_message(message)
    }

    pub(crate) fn into_raw(self) -> raw_types::HttpError {
        raw_types::HttpError {
            status: self.status,
            reason: self.reason,
            log_message: self.log_message,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.reason_phrase())?;
        if let Some(message) = &self.log_message {
            write!(f, " ({message})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::HttpError;

    #[test]
    fn display_matches_tornado() {
        assert_eq!(HttpError::new(404).to_string(), "HTTP 404: Not Found");
        assert_eq!(
            HttpError::new(500).with_log_message("boom").to_string(),
            "HTTP 500: Internal Server Error (boom)"
        );
    }

    #[test]
    fn missing_argument_is_a_400_naming_the_argument() {
        let err = HttpError::missing_argument("name");
        assert_eq!(err.status, 400);
        assert_eq!(err.reason.as_deref(), Some("Missing argument name"));
    }

    #[test]
    fn converts_to_the_wit_record() {
        let raw = HttpError::new(418).with_reason("Teapot").into_raw();
        assert_eq!(raw.status, 418);
        assert_eq!(raw.reason.as_deref(), Some("Teapot"));
        assert_eq!(raw.log_message, None);
    }
}
