//! Monitoring alerts in: Prometheus Alertmanager's webhook notifications
//! open incidents for firing alerts, note repeats on them, and resolve them
//! when the alerts resolve (`POST /alerts/alertmanager`).

pub mod rules;
pub mod service;
