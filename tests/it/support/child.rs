//! The `crossgate` binary as a child process, for what only a real process
//! shows: `kill -9`, SIGTERM, restarts on the same data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub struct ChildGateway {
    pub url: String,
    pub config_path: PathBuf,
    child: Child,
}

impl ChildGateway {
    /// What the gateway wrote to its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config_path.with_file_name("gateway.log")).unwrap_or_default()
    }

    /// Waits until no node of its store has work due, as
    /// [`super::TestGateway::quiesce`] does.
    pub async fn quiesce(&self) {
        super::quiesce(&reqwest::Client::new(), &self.url).await;
    }

    /// Write `toml` (with storage and plugin paths filled in) and start the gateway on it.
    pub async fn spawn(dir: &Path, toml: &str) -> ChildGateway {
        let storage = format!("sqlite://{}", dir.join("crossgate.db").display());
        Self::spawn_on(dir, toml, &storage).await
    }

    /// As [`ChildGateway::spawn`], on the database at `storage_url`. `toml`
    /// starts inside `[server]`.
    pub async fn spawn_on(dir: &Path, toml: &str, storage_url: &str) -> ChildGateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config_path = dir.join("crossgate.toml");
        let full = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_ms = 5000\n{toml}\n[storage]\nurl = \"{storage_url}\"\n[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\nmax_instances = 64\n",
            super::plugin_dir().display(),
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("plugin-cache")
                .display(),
        );
        std::fs::write(&config_path, full).expect("write config");
        Self::start(config_path, port).await
    }

    async fn start(config_path: PathBuf, port: u16) -> ChildGateway {
        // Its log beside its config, appended across restarts, so a test
        // can read what it wrote.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config_path.with_file_name("gateway.log"))
            .expect("gateway log");
        let child = Command::new(env!("CARGO_BIN_EXE_crossgate"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stderr(log)
            .spawn()
            .expect("start crossgate");
        let mut gateway = ChildGateway {
            url: format!("http://127.0.0.1:{port}"),
            config_path,
            child,
        };
        gateway.wait_ready().await;
        gateway
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited during start-up: {status}\n{}", self.log());
            }
            let health = client.get(format!("{}/healthz", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "gateway did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Start the same config again (same port, same database).
    pub async fn restart(self) -> ChildGateway {
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        Self::start(self.config_path.clone(), port).await
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then wait (bounded) for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
