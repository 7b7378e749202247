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
        scrape(&self.client, &self.url("/metrics"), sample).await
    }

    /// Waits until the sample `sample` of `/metrics` satisfies `wanted`;
    /// returns its value. Fails after ten seconds.
    pub async fn metric_until(&self, sample: &str, wanted: impl Fn(u64) -> bool) -> u64 {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let value = self.metric(sample).await;
            if wanted(value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sample} stayed at {value}"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Waits until at least `count` subscriptions follow the event stream
    /// (their starting point fixed, so every event committed from now on
    /// reaches them), as `/metrics` tells.
    pub async fn wait_for_subscriptions(&self, count: u64) {
        wait_for_subscriptions_at(&self.client, &self.url("/metrics"), count).await;
    }
}

/// One sample of the metrics at `url`, by its name with labels.
pub async fn scrape(client: &reqwest::Client, url: &str, sample: &str) -> u64 {
    let text = client
        .get(url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metric_value(&text, sample)
}

/// Waits until the server whose metrics are at `url` has at least `count`
/// subscriptions following the event stream; fails after ten seconds.
pub async fn wait_for_subscriptions_at(client: &reqwest::Client, url: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let open = scrape(client, url, "itsm_subscriptions_open").await;
        if open >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {open} of {count} subscriptions registered"
        );
        tokio::task::yield_now().await;
    }
}

/// One sample's value in Prometheus text, by its name with labels.
pub fn metric_value(metrics: &str, sample: &str) -> u64 {
    sample_value(metrics, sample).unwrap_or_else(|| panic!("no {sample} in {metrics}")) as u64
}

/// One sample's value in Prometheus text, as a float; `None` when absent.
pub fn sample_value(metrics: &str, sample: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == sample).then(|| value.parse::<f64>().ok())?
    })
}
