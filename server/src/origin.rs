//! Which browser origins may use this node: the lobby's CORS answers and the WebSocket
//! handshake's `Origin` check read the same policy.
//!
//! Why: a page on any site can make a visitor's browser call the lobby or open a WebSocket to
//! it (WebSockets are not covered by the same-origin policy). Only browsers send `Origin`, so a
//! request without one (a game client, a bot, curl) is never refused here; the policy only stops
//! other sites' pages from using this node through their visitors.

/// One allowed origin: `scheme://host[:port]`, or `*` for any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginRule {
    /// Any origin.
    Any,
    /// Exactly this origin (lowercase, no trailing slash).
    Exact(String),
}

impl OriginRule {
    /// Parses a configured origin; the error explains what an origin looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let lower = text.trim_end_matches('/').to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => {
                Ok(Self::Exact(lower))
            }
            _ => Err(format!(
                "`{text}` is not an origin: use scheme://host[:port] (e.g. https://game.example.com) or \"*\""
            )),
        }
    }
}

/// The configured policy.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    rules: Vec<OriginRule>,
}

impl Origins {
    /// The policy of `http.allowed_origins`; entries were validated with the config.
    pub fn new(configured: &[String]) -> Self {
        Self {
            rules: configured
                .iter()
                .filter_map(|text| OriginRule::parse(text).ok())
                .collect(),
        }
    }

    /// Whether a request with this `Origin` header, sent to this `Host`, may proceed.
    ///
    /// No `Origin`: allowed (not a browser). With no rules configured, only the node's own
    /// origin: the origin's `host[:port]` equals the request's `Host`.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.rules.is_empty() {
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            return match (origin_host, host) {
                (Some(origin_host), Some(host)) => origin_host.eq_ignore_ascii_case(host),
                _ => false,
            };
        }
        self.rules.iter().any(|rule| match rule {
            OriginRule::Any => true,
            OriginRule::Exact(allowed) => *allowed == origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_without_an_origin_are_not_from_a_browser_and_pass() {
        assert!(Origins::default().allows(None, Some("127.0.0.1:7878")));
        let strict = Origins::new(&["https://game.example.com".to_owned()]);
        assert!(strict.allows(None, None));
    }

    #[test]
    fn by_default_only_the_nodes_own_origin_passes() {
        let policy = Origins::default();
        assert!(policy.allows(Some("http://127.0.0.1:7878"), Some("127.0.0.1:7878")));
        assert!(!policy.allows(Some("https://evil.example"), Some("127.0.0.1:7878")));
        assert!(!policy.allows(Some("null"), Some("127.0.0.1:7878")));
        assert!(!policy.allows(Some("http://127.0.0.1:7878"), None));
    }

    #[test]
    fn configured_origins_match_exactly_and_star_matches_all() {
        let policy = Origins::new(&["https://Game.example.com/".to_owned()]);
        assert!(policy.allows(Some("https://game.example.com"), Some("lobby.example.com")));
        assert!(!policy.allows(Some("http://game.example.com"), Some("x")));
        assert!(!policy.allows(Some("https://game.example.com.evil"), Some("x")));
        let any = Origins::new(&["*".to_owned()]);
        assert!(any.allows(Some("https://anything.example"), Some("x")));
    }

    #[test]
    fn malformed_origins_are_refused_with_an_example() {
        assert!(OriginRule::parse("game.example.com").is_err());
        assert!(OriginRule::parse("https://").is_err());
        assert!(OriginRule::parse("https://a.example/path").is_err());
        assert_eq!(
            OriginRule::parse("http://localhost:3000"),
            Ok(OriginRule::Exact("http://localhost:3000".to_owned()))
        );
    }
}
