//! Names a handler may use (pub/sub topics, groups), from its manifest
//! section: each entry is a name, or a prefix ending in `*` (`"room.*"`);
//! `"*"` grants every name. Nothing is granted by default.

/// The names one handler was granted.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    patterns: Vec<String>,
}

impl Grants {
    pub fn new(patterns: &[String]) -> Self {
        Grants {
            patterns: patterns.to_vec(),
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let grants = Grants::new(&["chat".into(), "room.*".into()]);
        assert!(grants.allows("chat"));
        assert!(!grants.allows("chat2"));
        assert!(grants.allows("room.1"));
        assert!(!grants.allows("room"));
        assert!(!Grants::default().allows("chat"));
        assert!(Grants::new(&["*".into()]).allows("anything"));
    }
}
