//! An S3-compatible server for the attachment tests: `moto` in server mode
//! (from PyPI; `.ci/moto.sh` installs it), started on a free port per test
//! and stopped when dropped.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    client: reqwest::Client,
    _server: tokio::process::Child,
}

impl Moto {
    /// Starts `$ITSM_TEST_MOTO` on a free port, once it says where it listens.
    pub async fn start() -> Self {
        let program = std::env::var("ITSM_TEST_MOTO").expect("ITSM_TEST_MOTO names moto_server");
        let mut server = tokio::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server starts");
        let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
        let endpoint = loop {
            let line = lines
                .next_line()
                .await
                .expect("moto's output")
                .expect("moto_server said where it listens before exiting");
            if let Some(at) = line.find("Running on http://") {
                break line[at + "Running on ".len()..].trim().to_owned();
            }
        };
        // moto logs every request: keep reading so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            endpoint,
            client: reqwest::Client::new(),
            _server: server,
        }
    }

    /// Creates a bucket named `name`.
    pub async fn create_bucket(&self, name: &str) {
        let response = self
            .client
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("moto answers");
        assert!(response.status().is_success(), "{response:?}");
    }

    /// The store URL of `bucket` under `prefix`, as `ITSM_ATTACHMENT_STORE` takes it.
    pub fn store_url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&allow_http=true&region=us-east-1\
             &access_key_id=test&secret_access_key=test",
            self.endpoint
        )
    }

    /// The keys stored in `bucket`, sorted.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let listing = self
            .client
            .get(format!("{}/{bucket}?list-type=2", self.endpoint))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("a listing");
        let mut keys: Vec<String> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// Stores `body` under `key` in `bucket`, as something other than the service would.
    pub async fn put(&self, bucket: &str, key: &str, body: &'static [u8]) {
        let response = self
            .client
            .put(format!("{}/{bucket}/{key}", self.endpoint))
            .body(body)
            .send()
            .await
            .expect("moto answers");
        assert!(response.status().is_success(), "{response:?}");
    }
}
