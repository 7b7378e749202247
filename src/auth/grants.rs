//! What an `INTEGRATION` token's OAuth scopes allow beyond reading.
//!
//! An integration reads everything and, by default, writes nothing. Its token
//! may carry scopes — the OAuth `scope` claim (space-separated), or `scp`
//! (a string or a list, as Entra ID and Okta issue it) — that allow opening
//! tickets on behalf of a named person (`tickets:write`) and adding comments
//! (`comments:write`). Other scopes are ignored; other roles' rights come from
//! their role alone.

use serde_json::{Map, Value};

/// Opens tickets on behalf of a named requester.
pub const TICKETS_WRITE: &str = "tickets:write";
/// Adds public comments and work notes.
pub const COMMENTS_WRITE: &str = "comments:write";
/// Feeds monitoring alerts in (`POST /alerts/alertmanager`): opens incidents
/// for firing alerts, notes repeats, and resolves those incidents when
/// their alerts resolve.
pub const ALERTS_WRITE: &str = "alerts:write";

/// The write scopes a token carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Grants {
    /// `tickets:write`.
    pub tickets_write: bool,
    /// `comments:write`.
    pub comments_write: bool,
    /// `alerts:write`.
    pub alerts_write: bool,
}

impl Grants {
    /// Reads `scope` and `scp`.
    pub fn from_claims(claims: &Map<String, Value>) -> Self {
        let mut grants = Self::default();
        for claim in ["scope", "scp"] {
            let names: Vec<&str> = match claims.get(claim) {
                Some(Value::String(names)) => names.split_whitespace().collect(),
                Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for name in names {
                match name {
                    TICKETS_WRITE => grants.tickets_write = true,
                    COMMENTS_WRITE => grants.comments_write = true,
                    ALERTS_WRITE => grants.alerts_write = true,
                    _ => {}
                }
            }
        }
        grants
    }

    /// Reads a space-separated `scope` value.
    pub fn from_scope(scope: &str) -> Self {
        let mut claims = Map::new();
        claims.insert("scope".into(), Value::String(scope.to_owned()));
        Self::from_claims(&claims)
    }

    /// The `scope` claim for these grants, when there is any.
    pub fn scope_claim(&self) -> Option<String> {
        let names: Vec<&str> = [
            (self.tickets_write, TICKETS_WRITE),
            (self.comments_write, COMMENTS_WRITE),
            (self.alerts_write, ALERTS_WRITE),
        ]
        .into_iter()
        .filter_map(|(held, name)| held.then_some(name))
        .collect();
        (!names.is_empty()).then(|| names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn grants(claims: Value) -> Grants {
        Grants::from_claims(claims.as_object().expect("an object"))
    }

    #[test]
    fn scopes_come_from_scope_or_scp_in_either_shape() {
        assert_eq!(grants(json!({})), Grants::default());
        assert_eq!(
            grants(json!({"scope": "openid tickets:write profile"})),
            Grants {
                tickets_write: true,
                comments_write: false,
                alerts_write: false
            }
        );
        assert_eq!(
            grants(json!({"scp": ["comments:write", "tickets:write"]})),
            Grants {
                tickets_write: true,
                comments_write: true,
                alerts_write: false
            }
        );
        assert_eq!(
            grants(json!({"scp": "comments:write"})),
            Grants {
                tickets_write: false,
                comments_write: true,
                alerts_write: false
            }
        );
        // Near misses grant nothing.
        assert_eq!(
            grants(json!({"scope": "tickets:writes Tickets:Write tickets:read", "scp": 7})),
            Grants::default()
        );
    }

    #[test]
    fn alerts_write_is_read_from_either_claim() {
        assert!(grants(json!({"scope": "alerts:write"})).alerts_write);
        assert!(grants(json!({"scp": ["alerts:write"]})).alerts_write);
        assert!(!grants(json!({"scope": "alerts:read"})).alerts_write);
    }

    #[test]
    fn the_scope_claim_round_trips() {
        let both = Grants {
            tickets_write: true,
            comments_write: true,
            alerts_write: true,
        };
        let claim = both.scope_claim().expect("a claim");
        assert_eq!(claim, "tickets:write comments:write alerts:write");
        assert_eq!(grants(json!({ "scope": claim })), both);
        assert_eq!(Grants::default().scope_claim(), None);
    }
}
