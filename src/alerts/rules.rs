//! Prometheus Alertmanager's webhook payload (version 4) and how an alert
//! becomes an incident: pure, unit-tested.
//!
//! | label | what it sets |
//! | --- | --- |
//! | `impact`, `urgency` | `HIGH`, `MEDIUM` or `LOW` (any case): taken as they are |
//! | `severity` (or `priority`) | when `impact`/`urgency` are absent: `critical`, `page`, `emergency`, `disaster` → HIGH × HIGH; `error`, `major`, `high` → HIGH × MEDIUM; `warning`, `warn`, `ticket`, `average`, `medium` → MEDIUM × MEDIUM; `info`, `minor`, `low`, `notice` → LOW × LOW; anything else, or none → MEDIUM × MEDIUM |
//! | `itsm_queue` | the queue, by name; the default queue when absent or unknown |
//!
//! The title is the `summary` annotation, else `alertname` on `instance`;
//! the description holds the `description` annotation, every label and the
//! link back to the source.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::vocabulary::Level;

/// The label naming the queue.
pub const QUEUE_LABEL: &str = "itsm_queue";

/// Longest title, in characters.
const MAX_TITLE: usize = 200;

/// One notification: a group of alerts and where they stand.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `"4"`.
    #[serde(default)]
    pub version: String,
    /// `firing` or `resolved` (the group as a whole).
    #[serde(default)]
    pub status: String,
    /// The receiver's name in Alertmanager's configuration.
    #[serde(default)]
    pub receiver: String,
    /// Alertmanager's own URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// How many alerts did not fit (`max_alerts`).
    #[serde(default)]
    pub truncated_alerts: u64,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One alert.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// What identifies the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What describes it.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it began firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved (`0001-01-01T00:00:00Z` while firing).
    pub ends_at: Option<DateTime<Utc>>,
    /// Where it comes from (a Prometheus graph).
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the labels.
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// Firing, as opposed to resolved.
    pub fn firing(&self) -> bool {
        self.status.eq_ignore_ascii_case("firing")
    }

    /// The fingerprint Alertmanager sent, or one made the same way from the
    /// labels when it sent none.
    pub fn fingerprint(&self) -> String {
        let sent = self.fingerprint.trim();
        if !sent.is_empty() && sent.len() <= 128 {
            return sent.to_owned();
        }
        let mut hash = Sha256::new();
        for (name, value) in &self.labels {
            hash.update(name.as_bytes());
            hash.update([0xff]);
            hash.update(value.as_bytes());
            hash.update([0xff]);
        }
        hash.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `alertname`, or `alert` when it has none.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("alert")
    }

    /// Impact and urgency, as the table above says.
    pub fn levels(&self) -> (Level, Level) {
        let label = |name: &str| self.labels.get(name).map(|v| v.trim().to_ascii_lowercase());
        let explicit = |name: &str| match label(name).as_deref() {
            Some("high") => Some(Level::High),
            Some("medium") => Some(Level::Medium),
            Some("low") => Some(Level::Low),
            _ => None,
        };
        let by_severity = match label("severity").or_else(|| label("priority")).as_deref() {
            Some("critical" | "page" | "emergency" | "disaster") => (Level::High, Level::High),
            Some("error" | "major" | "high") => (Level::High, Level::Medium),
            Some("info" | "minor" | "low" | "notice") => (Level::Low, Level::Low),
            _ => (Level::Medium, Level::Medium),
        };
        (
            explicit("impact").unwrap_or(by_severity.0),
            explicit("urgency").unwrap_or(by_severity.1),
        )
    }

    /// The queue named by the `itsm_queue` label.
    pub fn queue(&self) -> Option<&str> {
        self.labels
            .get(QUEUE_LABEL)
            .map(|q| q.trim())
            .filter(|q| !q.is_empty())
    }

    /// The incident's title.
    pub fn title(&self) -> String {
        let title = match self.annotations.get("summary").map(|s| s.trim()) {
            Some(summary) if !summary.is_empty() => summary.to_owned(),
            _ => match self.labels.get("instance") {
                Some(instance) => format!("{} on {instance}", self.name()),
                None => self.name().to_owned(),
            },
        };
        let title: String = title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let title = title.trim();
        if title.chars().count() > MAX_TITLE {
            let mut cut: String = title.chars().take(MAX_TITLE - 1).collect();
            cut.push('…');
            cut
        } else {
            title.to_owned()
        }
    }

    /// The incident's description.
    pub fn description(&self, source: &str) -> String {
        let mut text = String::new();
        if let Some(description) = self.annotations.get("description") {
            text.push_str(description.trim());
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "Alert {} firing since {}.\n",
            self.name(),
            self.starts_at.to_rfc3339()
        ));
        text.push_str("Labels:\n");
        for (name, value) in &self.labels {
            text.push_str(&format!("  {name}={value}\n"));
        }
        if !self.generator_url.is_empty() {
            text.push_str(&format!("Source: {}\n", self.generator_url));
        }
        if !source.is_empty() {
            text.push_str(&format!("Alertmanager: {source}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.27 sends it (`amtool`'s example,
    /// with two alerts of one group); the API tests replay it too.
    pub const FIRING: &str = include_str!("../../tests/api/fixtures/alertmanager-firing.json");

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: "firing".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: Utc::now(),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn a_real_payload_reads() {
        let notification: Notification = serde_json::from_str(FIRING).expect("parses");
        assert_eq!(notification.version, "4");
        assert_eq!(notification.external_url, "http://alertmanager:9093");
        let first = &notification.alerts[0];
        assert!(first.firing());
        assert_eq!(first.fingerprint(), "a1b2c3d4e5f60718");
        assert_eq!(first.title(), "API error rate above 5%");
        assert_eq!(first.levels(), (Level::High, Level::High));
        assert_eq!(first.queue(), Some("Network"));
        let second = &notification.alerts[1];
        assert_eq!(second.title(), "DiskFilling on db-7:9100");
        assert_eq!(second.levels(), (Level::Medium, Level::Medium));
        assert!(
            first
                .description("http://alertmanager:9093")
                .contains("severity=critical")
        );
    }

    #[test]
    fn severity_maps_to_impact_and_urgency_unless_given() {
        let cases = [
            ("critical", (Level::High, Level::High)),
            ("Page", (Level::High, Level::High)),
            ("error", (Level::High, Level::Medium)),
            ("warning", (Level::Medium, Level::Medium)),
            ("info", (Level::Low, Level::Low)),
            ("whatever", (Level::Medium, Level::Medium)),
        ];
        for (severity, levels) in cases {
            assert_eq!(
                alert(&[("severity", severity)]).levels(),
                levels,
                "{severity}"
            );
        }
        assert_eq!(alert(&[]).levels(), (Level::Medium, Level::Medium));
        assert_eq!(
            alert(&[("severity", "critical"), ("urgency", "low")]).levels(),
            (Level::High, Level::Low)
        );
        assert_eq!(
            alert(&[("priority", "minor"), ("impact", "HIGH")]).levels(),
            (Level::High, Level::Low)
        );
    }

    #[test]
    fn without_a_fingerprint_the_labels_make_one() {
        let a = alert(&[("alertname", "X"), ("instance", "a")]);
        let b = alert(&[("instance", "a"), ("alertname", "X")]);
        let c = alert(&[("alertname", "X"), ("instance", "b")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn titles_are_one_line_and_bounded() {
        let mut long = alert(&[("alertname", "X")]);
        long.annotations
            .insert("summary".into(), format!("line\nbreak {}", "y".repeat(300)));
        let title = long.title();
        assert!(!title.contains('\n'));
        assert_eq!(title.chars().count(), 200);
        assert_eq!(alert(&[]).title(), "alert");
    }
}
