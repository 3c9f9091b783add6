//! The settings a route passes to its handler's `initialize`.

use serde::de::DeserializeOwned;

/// A route's settings: the `[route.settings]` table of `waterspout.toml`, as
/// Tornado's `initialize(**kwargs)` receives the third item of a URL spec.
///
/// String values arrive as they are; other TOML values (numbers, booleans,
/// arrays, tables) arrive as JSON text: use [`get_json`](Settings::get_json)
/// for those.
///
/// ```
/// use waterspout_sdk::Settings;
///
/// let settings: Settings = [("greeting", "hi"), ("limit", "10")].into_iter().collect();
/// assert_eq!(settings.get("greeting"), Some("hi"));
/// assert_eq!(settings.get_json::<u32>("limit"), Some(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    entries: Vec<(String, String)>,
}

impl Settings {
    /// Settings from `(key, value)` pairs, as the host passes them.
    ///
    /// ```
    /// let settings = waterspout_sdk::Settings::new(vec![("mode".into(), "fast".into())]);
    /// assert_eq!(settings.len(), 1);
    /// ```
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Self { entries }
    }

    /// The raw text of a setting, or `None` when the route does not set it.
    ///
    /// ```
    /// let settings: waterspout_sdk::Settings = [("mode", "fast")].into_iter().collect();
    /// assert_eq!(settings.get("mode"), Some("fast"));
    /// assert_eq!(settings.get("missing"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A setting decoded from JSON into `T`, or `None` when the route does not set it.
    ///
    /// A plain string setting also decodes into `String` (it is not JSON-quoted
    /// on the wire).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use waterspout_sdk::Settings;
    ///
    /// let settings: Settings = [
    ///     ("retries", "3"),
    ///     ("debug", "true"),
    ///     ("limits", r#"{"a": 1}"#),
    ///     ("name", "plain text"),
    /// ]
    /// .into_iter()
    /// .collect();
    /// assert_eq!(settings.get_json::<u8>("retries"), Some(3));
    /// assert_eq!(settings.get_json::<bool>("debug"), Some(true));
    /// assert_eq!(settings.get_json::<HashMap<String, i32>>("limits").unwrap()["a"], 1);
    /// assert_eq!(settings.get_json::<String>("name").as_deref(), Some("plain text"));
    /// assert_eq!(settings.get_json::<u8>("absent"), None);
    /// ```
    ///
    /// # Panics
    ///
    /// When the value does not decode into `T`: that is a mistake in the
    /// manifest, and the panic (a 500, logged with this message) says which
    /// setting is wrong.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let raw = self.get(key)?;
        let decoded = serde_json::from_str::<T>(raw).or_else(|json_error| {
            // String settings arrive unquoted; let them decode as JSON strings.
            serde_json::from_value::<T>(serde_json::Value::String(raw.to_owned())).map_err(|_| json_error)
        });
        match decoded {
            Ok(value) => Some(value),
            Err(error) => panic!(
                "setting `{key}` = {raw:?} is not a valid {}: {error}",
                std::any::type_name::<T>()
            ),
        }
    }

    /// Every `(key, value)` pair, in the manifest's order.
    ///
    /// ```
    /// let settings: waterspout_sdk::Settings = [("a", "1"), ("b", "2")].into_iter().collect();
    /// let keys: Vec<&str> = settings.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of settings.
    ///
    /// ```
    /// assert_eq!(waterspout_sdk::Settings::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the route passes no settings.
    ///
    /// ```
    /// assert!(waterspout_sdk::Settings::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::new(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<'a> IntoIterator for &'a Settings {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn string_that_looks_like_json_still_decodes_as_string() {
        let settings: Settings = [("code", "42")].into_iter().collect();
        assert_eq!(settings.get_json::<String>("code").as_deref(), Some("42"));
        assert_eq!(settings.get_json::<u32>("code"), Some(42));
    }

    #[test]
    #[should_panic(expected = "setting `limit`")]
    fn malformed_values_name_the_setting() {
        let settings: Settings = [("limit", "ten")].into_iter().collect();
        let _ = settings.get_json::<u32>("limit");
    }

    #[test]
    fn iterates_by_reference() {
        let settings: Settings = [("a", "1")].into_iter().collect();
        let mut seen = Vec::new();
        for (k, v) in &settings {
            seen.push(format!("{k}={v}"));
        }
        assert_eq!(seen, ["a=1"]);
    }
}
