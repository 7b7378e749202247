//! Routing rules as pure data: conditions a new ticket matches, and the
//! actions a match applies.

use serde::{Deserialize, Serialize};

use crate::vocabulary::{Level, TicketKind};

/// What a rule matches. Every given list must contain the ticket's value
/// (lists are alternatives); keywords match when any appears in the title or
/// description, ignoring case. Empty conditions match every ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Conditions {
    /// Ticket kinds.
    pub kinds: Vec<TicketKind>,
    /// Services the ticket concerns.
    pub service_ids: Vec<i64>,
    /// Catalog items requested.
    pub catalog_item_ids: Vec<i64>,
    /// Catalog categories of the item requested.
    pub categories: Vec<String>,
    /// Impacts.
    pub impacts: Vec<Level>,
    /// Urgencies.
    pub urgencies: Vec<Level>,
    /// Words in the title or description.
    pub keywords: Vec<String>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Actions {
    /// Put the ticket in this queue.
    pub queue_id: Option<i64>,
    /// Assign it to this agent.
    pub assignee_id: Option<i64>,
    /// Set its impact.
    pub impact: Option<Level>,
    /// Set its urgency.
    pub urgency: Option<Level>,
}

impl Actions {
    /// True when the rule would change nothing.
    pub fn is_empty(&self) -> bool {
        self.queue_id.is_none()
            && self.assignee_id.is_none()
            && self.impact.is_none()
            && self.urgency.is_none()
    }
}

/// What rules look at in a new ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Its kind.
    pub kind: TicketKind,
    /// The service it names.
    pub service_id: Option<i64>,
    /// The catalog item it requests.
    pub catalog_item_id: Option<i64>,
    /// That item's category.
    pub category: Option<&'a str>,
    /// Its impact.
    pub impact: Level,
    /// Its urgency.
    pub urgency: Level,
    /// Its title.
    pub title: &'a str,
    /// Its description.
    pub description: &'a str,
}

fn allows<T: PartialEq>(list: &[T], value: Option<&T>) -> bool {
    list.is_empty() || value.is_some_and(|v| list.contains(v))
}

impl Conditions {
    /// Does a ticket with these facts match?
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let text = format!("{} {}", facts.title, facts.description).to_lowercase();
        allows(&self.kinds, Some(&facts.kind))
            && allows(&self.service_ids, facts.service_id.as_ref())
            && allows(&self.catalog_item_ids, facts.catalog_item_id.as_ref())
            && (self.categories.is_empty()
                || facts
                    .category
                    .is_some_and(|c| self.categories.iter().any(|x| x.eq_ignore_ascii_case(c))))
            && allows(&self.impacts, Some(&facts.impact))
            && allows(&self.urgencies, Some(&facts.urgency))
            && (self.keywords.is_empty()
                || self
                    .keywords
                    .iter()
                    .any(|k| !k.trim().is_empty() && text.contains(&k.trim().to_lowercase())))
    }
}

/// The first rule, in order, whose conditions match.
pub fn first_match<'r, R>(rules: &'r [(R, Conditions)], facts: &Facts<'_>) -> Option<&'r R> {
    rules
        .iter()
        .find(|(_, c)| c.matches(facts))
        .map(|(rule, _)| rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            kind: TicketKind::Incident,
            service_id: Some(7),
            catalog_item_id: None,
            category: None,
            impact: Level::High,
            urgency: Level::Low,
            title: "VPN drops every hour",
            description: "Since the gateway upgrade",
        }
    }

    #[test]
    fn empty_conditions_match_everything() {
        assert!(Conditions::default().matches(&facts()));
    }

    #[test]
    fn every_given_condition_must_hold_and_lists_are_alternatives() {
        let vpn = Conditions {
            kinds: vec![TicketKind::Incident, TicketKind::Problem],
            keywords: vec!["vpn".into(), "wifi".into()],
            impacts: vec![Level::High],
            ..Conditions::default()
        };
        assert!(vpn.matches(&facts()));
        let wrong_kind = Conditions {
            kinds: vec![TicketKind::Change],
            ..vpn.clone()
        };
        assert!(!wrong_kind.matches(&facts()));
        let wrong_service = Conditions {
            service_ids: vec![8],
            ..vpn.clone()
        };
        assert!(!wrong_service.matches(&facts()));
        let no_item = Conditions {
            catalog_item_ids: vec![1],
            ..Conditions::default()
        };
        assert!(
            !no_item.matches(&facts()),
            "a ticket without an item matches no item condition"
        );
        let gateway = Conditions {
            keywords: vec!["GATEWAY".into()],
            ..Conditions::default()
        };
        assert!(
            gateway.matches(&facts()),
            "keywords search the description too, ignoring case"
        );
    }

    #[test]
    fn categories_come_from_the_item() {
        let hardware = Conditions {
            categories: vec!["Hardware".into()],
            ..Conditions::default()
        };
        assert!(!hardware.matches(&facts()));
        let requested = Facts {
            category: Some("hardware"),
            ..facts()
        };
        assert!(hardware.matches(&requested));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = vec![
            (
                "printers",
                Conditions {
                    keywords: vec!["printer".into()],
                    ..Conditions::default()
                },
            ),
            (
                "vpn",
                Conditions {
                    keywords: vec!["vpn".into()],
                    ..Conditions::default()
                },
            ),
            ("catch-all", Conditions::default()),
        ];
        assert_eq!(first_match(&rules, &facts()), Some(&"vpn"));
    }
}
