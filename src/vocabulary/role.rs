//! Roles and how they are read from a token's claims.

use sea_orm::entity::prelude::StringLen;
use serde_json::{Map, Value};

/// What a person may do, from the token's role claim.
///
/// Ordered by reach: when a token names several roles, the highest wins
/// (`REQUESTER` < `INTEGRATION` < `AGENT` < `MANAGER` < `ADMIN`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    async_graphql::Enum,
    clap::ValueEnum,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Role {
    /// Any signed-in person: their own tickets, public comments, the live catalog.
    #[default]
    #[sea_orm(string_value = "REQUESTER")]
    Requester,
    /// Read-only machine access for integrators.
    #[sea_orm(string_value = "INTEGRATION")]
    Integration,
    /// Works tickets in their teams' queues and those assigned to them.
    #[sea_orm(string_value = "AGENT")]
    Agent,
    /// All tickets, approvals, the catalog, services, queues and routing.
    #[sea_orm(string_value = "MANAGER")]
    Manager,
    /// Everything, including teams and people.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

impl Role {
    /// The claim value for this role, as minted by `itsm token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "REQUESTER",
            Self::Integration => "INTEGRATION",
            Self::Agent => "AGENT",
            Self::Manager => "MANAGER",
            Self::Admin => "ADMIN",
        }
    }

    /// Parses one role name, ignoring case and surrounding space.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        [
            Self::Requester,
            Self::Integration,
            Self::Agent,
            Self::Manager,
            Self::Admin,
        ]
        .into_iter()
        .find(|role| role.as_str().eq_ignore_ascii_case(name))
    }

    /// The role a token grants.
    ///
    /// `claim` names the claim (or a dotted path into nested objects, such as
    /// `realm_access.roles`); without one, `role` is read, or `roles` when `role`
    /// is absent. The value may be a string or an array of strings; unknown
    /// names are ignored and the highest known role wins. No known role means
    /// `REQUESTER`.
    pub fn from_claims(claims: &Map<String, Value>, claim: Option<&str>) -> Self {
        RoleRules {
            claims: claim.map(|c| vec![c.to_owned()]).unwrap_or_default(),
            ..RoleRules::default()
        }
        .role_of(claims)
        .unwrap_or_default()
    }
}

/// How an identity provider's claims become a role: which claims hold role
/// names (Keycloak's `realm_access.roles` and `resource_access.<client>.roles`,
/// Entra ID's `roles`, an Auth0 namespaced claim, Okta's `groups` …), what
/// each name means here, and what a token with no known role gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRules {
    /// Claims (names, or dotted paths) whose names all count; none means
    /// `role`, or `roles` when `role` is absent.
    pub claims: Vec<String>,
    /// The provider's names for our roles (matched ignoring case). When set,
    /// only these names count (a provider's group called "admin" grants
    /// nothing unless mapped); when empty, our own role names count.
    pub map: Vec<(String, Role)>,
    /// The role of a token with no known role; `None` refuses it.
    pub default: Option<Role>,
}

impl Default for RoleRules {
    fn default() -> Self {
        Self {
            claims: Vec::new(),
            map: Vec::new(),
            default: Some(Role::Requester),
        }
    }
}

impl RoleRules {
    /// The highest role `claims` grant, or the default; `None` when the
    /// token has no known role and there is no default.
    pub fn role_of(&self, claims: &Map<String, Value>) -> Option<Role> {
        let values: Vec<&Value> = if self.claims.is_empty() {
            present(claims.get("role"))
                .or_else(|| present(claims.get("roles")))
                .into_iter()
                .collect()
        } else {
            self.claims
                .iter()
                .filter_map(|claim| lookup(claims, claim))
                .collect()
        };
        let names = values.into_iter().flat_map(|value| match value {
            Value::String(name) => vec![name.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        });
        names
            .filter_map(|name| self.meaning(name))
            .max()
            .or(self.default)
    }

    fn meaning(&self, name: &str) -> Option<Role> {
        if self.map.is_empty() {
            return Role::parse(name);
        }
        let name = name.trim();
        self.map
            .iter()
            .find(|(theirs, _)| theirs.eq_ignore_ascii_case(name))
            .map(|(_, ours)| *ours)
    }
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// Finds a claim by its exact name (which may itself contain dots, as
/// namespaced claims like `https://example.com/roles` do), else by dotted path.
fn lookup<'a>(claims: &'a Map<String, Value>, claim: &str) -> Option<&'a Value> {
    if let Some(value) = present(claims.get(claim)) {
        return Some(value);
    }
    let mut parts = claim.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    present(Some(value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn role_is_read_from_role_then_roles() {
        assert_eq!(
            Role::from_claims(&claims(json!({"role": "agent"})), None),
            Role::Agent
        );
        assert_eq!(
            Role::from_claims(&claims(json!({"roles": ["Manager"]})), None),
            Role::Manager
        );
        assert_eq!(
            Role::from_claims(&claims(json!({"role": "agent", "roles": ["admin"]})), None),
            Role::Agent,
            "`role` wins over `roles` when both are present"
        );
    }

    #[test]
    fn the_highest_known_role_wins() {
        let c = claims(json!({"roles": ["requester", "nonsense", "ADMIN", "agent"]}));
        assert_eq!(Role::from_claims(&c, None), Role::Admin);
        let c = claims(json!({"roles": ["integration", "requester"]}));
        assert_eq!(Role::from_claims(&c, None), Role::Integration);
    }

    #[test]
    fn unknown_or_absent_roles_mean_requester() {
        assert_eq!(Role::from_claims(&claims(json!({})), None), Role::Requester);
        assert_eq!(
            Role::from_claims(&claims(json!({"role": "superuser"})), None),
            Role::Requester
        );
        assert_eq!(
            Role::from_claims(&claims(json!({"role": 7})), None),
            Role::Requester
        );
        assert_eq!(
            Role::from_claims(&claims(json!({"role": null, "roles": "agent"})), None),
            Role::Agent
        );
    }

    #[test]
    fn a_configured_claim_is_read_by_name_or_dotted_path() {
        let c = claims(json!({
            "realm_access": {"roles": ["offline_access", "manager"]},
            "https://itsm.example/roles": ["admin"],
            "role": "agent"
        }));
        assert_eq!(
            Role::from_claims(&c, Some("realm_access.roles")),
            Role::Manager
        );
        assert_eq!(
            Role::from_claims(&c, Some("https://itsm.example/roles")),
            Role::Admin
        );
        assert_eq!(Role::from_claims(&c, Some("groups")), Role::Requester);
    }

    #[test]
    fn each_providers_claim_shape_maps_to_a_role() {
        let rules = |claims: &[&str], map: &[(&str, Role)]| RoleRules {
            claims: claims.iter().map(|c| (*c).to_owned()).collect(),
            map: map.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect(),
            default: Some(Role::Requester),
        };
        // Keycloak: realm and client roles both count; the highest wins.
        let keycloak = rules(
            &["realm_access.roles", "resource_access.itsm.roles"],
            &[("itsm-agent", Role::Agent), ("itsm-admin", Role::Admin)],
        );
        let token = claims(json!({
            "realm_access": {"roles": ["offline_access", "itsm-agent"]},
            "resource_access": {"itsm": {"roles": ["itsm-admin"]}, "other": {"roles": ["x"]}}
        }));
        assert_eq!(keycloak.role_of(&token), Some(Role::Admin));
        // Entra ID app roles, in `roles`.
        let entra = rules(&[], &[("Helpdesk.Manager", Role::Manager)]);
        let token = claims(json!({"roles": ["Helpdesk.Manager"]}));
        assert_eq!(entra.role_of(&token), Some(Role::Manager));
        // Auth0: a namespaced claim.
        let auth0 = rules(
            &["https://itsm.example.com/roles"],
            &[("helpdesk", Role::Agent)],
        );
        let token = claims(json!({"https://itsm.example.com/roles": ["helpdesk"]}));
        assert_eq!(auth0.role_of(&token), Some(Role::Agent));
        // Okta groups: with a map, an unmapped group named like our role grants nothing.
        let okta = rules(&["groups"], &[("ITSM Admins", Role::Admin)]);
        let mapped = claims(json!({"groups": ["Everyone", "itsm admins"]}));
        assert_eq!(okta.role_of(&mapped), Some(Role::Admin));
        let unmapped = claims(json!({"groups": ["admin"]}));
        assert_eq!(okta.role_of(&unmapped), Some(Role::Requester));
        // No known role: the default, or a refusal.
        let strict = RoleRules {
            default: None,
            ..okta
        };
        assert_eq!(strict.role_of(&unmapped), None);
    }

    #[test]
    fn role_names_round_trip() {
        for role in [
            Role::Requester,
            Role::Integration,
            Role::Agent,
            Role::Manager,
            Role::Admin,
        ] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(Role::parse(&role.as_str().to_lowercase()), Some(role));
        }
    }
}
