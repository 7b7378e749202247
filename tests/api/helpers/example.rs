//! The client examples under `examples/`, run as child processes: each prints
//! one JSON object per line on stdout, which the test reads as it comes.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// How long an example may take to print its next line.
const LINE_TIMEOUT: Duration = Duration::from_secs(90);

/// `examples/<relative>` in this checkout.
pub fn example_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(relative)
}

/// A running example and the lines it printed so far.
pub struct Example {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// Every line read so far, in order.
    pub seen: Vec<Value>,
}

impl Example {
    /// `node examples/<script>` with `env`.
    pub fn node(script: &str, env: &[(&str, String)]) -> Self {
        let path = example_path(script);
        Self::start(script, Command::new("node").arg(path), env)
    }

    /// `python examples/<script>` with the examples' virtual environment.
    pub fn python(script: &str, env: &[(&str, String)]) -> Self {
        let python = example_path("python-integrator/.venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `bash examples/setup.sh`",
            python.display()
        );
        let path = example_path(script);
        Self::start(script, Command::new(python).arg(path), env)
    }

    fn start(name: &str, command: &mut Command, env: &[(&str, String)]) -> Self {
        assert!(
            example_path("node_modules").exists(),
            "examples/node_modules is missing: run `bash examples/setup.sh`"
        );
        let mut child = command
            .current_dir(example_path(""))
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buffer).await {
                let text = String::from_utf8_lossy(&buffer[..n]);
                sink.lock().expect("stderr buffer").push_str(&text);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            lines: BufReader::new(stdout).lines(),
            stderr,
            seen: Vec::new(),
        }
    }

    /// What the example wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// The next JSON line; fails when the example ends or goes quiet.
    pub async fn next(&mut self) -> Value {
        let line = match tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => {
                let status = self.child.wait().await.ok();
                panic!(
                    "{} ended ({status:?}) after {:?}\nstderr:\n{}",
                    self.name,
                    self.seen,
                    self.stderr()
                )
            }
            Ok(Err(e)) => panic!("reading {}: {e}", self.name),
            Err(_) => panic!(
                "{} printed nothing for {LINE_TIMEOUT:?}; so far {:?}\nstderr:\n{}",
                self.name,
                self.seen,
                self.stderr()
            ),
        };
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "{} printed a line that is not JSON ({e}): {line}\nstderr:\n{}",
                self.name,
                self.stderr()
            )
        });
        self.seen.push(value.clone());
        value
    }

    /// Reads lines until one satisfies `wanted`, and returns it.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next().await;
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Reads the remaining lines and waits for the example to exit 0.
    pub async fn finished(mut self) -> Vec<Value> {
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line()).await
        {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{} printed non-JSON ({e}): {line}", self.name));
            self.seen.push(value);
        }
        let status = tokio::time::timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit", self.name))
            .expect("exit status");
        assert!(
            status.success(),
            "{} failed ({status}) after {:?}\nstderr:\n{}",
            self.name,
            self.seen,
            self.stderr()
        );
        self.seen
    }

    /// Asks the example to stop (SIGTERM) and waits for it to exit 0.
    pub async fn stopped(self) -> Vec<Value> {
        if let Some(pid) = self.child.id() {
            // The `kill` program: no signal crate for one signal in tests.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        self.finished().await
    }
}

/// A free port on 127.0.0.1 (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
