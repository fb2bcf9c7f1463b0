//! A `clickstream` child process with its log in a file: started on ports the OS picks
//! (it says which in its log), killed with SIGKILL, frozen with SIGSTOP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::eventually::{check, eventually};

/// A running `clickstream` subcommand.
pub struct Child {
    process: tokio::process::Child,
    log: PathBuf,
    /// Where in the log [`Child::wait_for_line`] starts looking.
    from: usize,
}

/// `clickstream up` with the ingest, registry and UI ports left to the system.
pub const UP_ON_FREE_PORTS: [&str; 7] = [
    "up",
    "--api-port",
    "0",
    "--registry-port",
    "0",
    "--ui-port",
    "0",
];

impl Child {
    /// Starts `clickstream --data-dir <dir> <args>` with `env`, logging to
    /// `<dir>/<name>.log` (appended to, so a restart keeps the earlier rounds' lines).
    pub fn spawn(
        name: &str,
        dir: &Path,
        args: &[&str],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Child {
        std::fs::create_dir_all(dir).expect("data dir");
        let log = dir.join(format!("{name}.log"));
        let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env("CLICKSTREAM_INGEST__HOST", "127.0.0.1")
            .env("CLICKSTREAM_REGISTRY__HOST", "127.0.0.1")
            .env("CLICKSTREAM_UI__HOST", "127.0.0.1")
            // Many children run at once: none may take the REST proxy's fixed port.
            .env("CLICKSTREAM_REST_PROXY__HOST", "127.0.0.1")
            .env("CLICKSTREAM_REST_PROXY__PORT", "0")
            // The ledger reads whole tables through `/api/sql` to check every event.
            .env("CLICKSTREAM_QUERY__MAX_RESULT_ROWS", "0")
            .env("CLICKSTREAM_QUERY__MAX_RESULT_BYTES", "0")
            .env("RUST_LOG", "warn,clickstream=info,clickstream_kafka=info")
            .env("NO_COLOR", "1")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn clickstream");
        Child { process, log, from }
    }

    /// Everything the child logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// From now on, [`Child::wait_for_line`] looks only at what the child logs next.
    pub fn mark(&mut self) {
        self.from = std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize);
    }

    /// Waits until the child logs a line containing `marker` (since it started, or since
    /// the last [`Child::mark`]) and returns that line. Fails if the child exits first.
    pub async fn wait_for_line(&mut self, marker: &str) -> String {
        let skip = self.from;
        let what = format!("the child logs {marker:?}");
        eventually(&what, Duration::from_secs(60), || {
            let text = self.log_text();
            let exited = self.process.try_wait().ok().flatten();
            async move {
                let fresh = text.get(skip..).unwrap_or_default();
                if let Some(line) = fresh.lines().find(|l| l.contains(marker)) {
                    return Ok(line.to_string());
                }
                if let Some(status) = exited {
                    panic!("the child exited ({status}) before {marker:?}:\n{fresh}");
                }
                check(false, || "not yet".into()).map(|()| String::new())
            }
        })
        .await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id().expect("running")
    }

    /// The exit status, if the child has exited.
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_wait().ok().flatten()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        self.process.kill().await.expect("SIGKILL");
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A failing test shows what the child said.
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

/// The value of `field=` in a log line (`ingest=http://127.0.0.1:41234`).
pub fn field<'a>(line: &'a str, field: &str) -> &'a str {
    let at = line
        .find(&format!("{field}="))
        .unwrap_or_else(|| panic!("no {field}= in {line:?}"));
    let value = &line[at + field.len() + 1..];
    value.split_whitespace().next().unwrap_or_default()
}
