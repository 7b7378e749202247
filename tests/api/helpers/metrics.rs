//! Reading samples from the server's Prometheus `/metrics`.

use super::TestApp;

impl TestApp {
    /// The SQL statements the server has run for requests so far, from `/metrics`.
    pub async fn statements(&self) -> u64 {
        self.metric("itsm_db_statements_total{source=\"requests\"}")
            .await
    }

    /// One sample of `/metrics`, by its name with labels.
    pub async fn metric(&self, sample: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        metric_value(&text, sample)
    }
}

/// One sample's value in Prometheus text, by its name with labels.
pub fn metric_value(metrics: &str, sample: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no {sample} in {metrics}")) as u64
}
