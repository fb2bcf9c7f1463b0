//! The backends a scenario can run on. Scenarios are written once, against a [`Backend`]
//! (a log backend and a lake backend), and each has one test per combination.
//!
//! - The Kafka backend is librdkafka's mock cluster: real Kafka-protocol brokers on
//!   loopback ports, hosted by the test process, which child processes reach too.
//! - The S3 backend is a real S3-API server: moto's standalone server (PyPI
//!   `moto[server]`), which `scripts/test` installs into the test virtualenv. A fresh one
//!   is started per test on a free loopback port, so one test pausing its store does not
//!   disturb another.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clickstream::Config;
use clickstream_log::{EmbeddedLog, EmbeddedLogConfig, EventLog};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A log backend and a lake backend.
pub struct Backend {
    pub log: LogBackend,
    pub lake: LakeBackend,
}

impl Backend {
    pub fn new(log: LogBackend, lake: LakeBackend) -> Backend {
        Backend { log, lake }
    }

    /// Points an in-process pipeline's config at these backends.
    pub fn configure(&self, config: &mut Config) {
        self.log.configure(config);
        self.lake.configure(config);
    }

    /// Environment pointing a `clickstream` child process at these backends, through
    /// the original stack's variable names.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.log.env();
        env.extend(self.lake.env());
        env
    }

    /// The log a pipeline with data dir `dir` ran on, opened for inspection.
    pub async fn open_log(&self, dir: &std::path::Path) -> std::sync::Arc<dyn EventLog> {
        match &self.log {
            LogBackend::Embedded => std::sync::Arc::new(
                EmbeddedLog::open(EmbeddedLogConfig::with_dir(dir.join("log")))
                    .await
                    .expect("log reopens"),
            ),
            LogBackend::Kafka(cluster) => {
                let config = clickstream_kafka::KafkaConfig {
                    bootstrap_servers: Some(cluster.bootstrap_servers()),
                    ..Default::default()
                };
                std::sync::Arc::new(
                    clickstream_kafka::KafkaLog::connect(config)
                        .await
                        .expect("kafka reachable"),
                )
            }
        }
    }
}

/// Where the log lives in a scenario.
pub enum LogBackend {
    /// The default: the embedded log in the pipeline's data dir.
    Embedded,
    /// A Kafka cluster: librdkafka's mock brokers, in this process.
    Kafka(MockCluster<'static, DefaultProducerContext>),
}

impl LogBackend {
    /// A fresh mock Kafka cluster of three brokers with the pipeline's topics. The mock
    /// brokers do not implement the admin API's CreateTopics, so the topics are created
    /// as an operator would on a cluster where clients may not create them.
    pub fn kafka() -> LogBackend {
        let cluster = MockCluster::new(3).expect("mock cluster starts");
        for spec in clickstream::topics::topic_specs(None, 6).expect("default topics") {
            cluster
                .create_topic(&spec.name, spec.partitions as i32, 1)
                .expect("topic created");
        }
        LogBackend::Kafka(cluster)
    }

    fn configure(&self, config: &mut Config) {
        if let LogBackend::Kafka(cluster) = self {
            config.kafka.bootstrap_servers = Some(cluster.bootstrap_servers());
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            LogBackend::Embedded => Vec::new(),
            LogBackend::Kafka(cluster) => {
                vec![("KAFKA_BOOTSTRAP_SERVERS", cluster.bootstrap_servers())]
            }
        }
    }
}

/// Where the lake lives in a scenario.
pub enum LakeBackend {
    /// The default: a `file://` lake in the pipeline's data dir.
    File,
    /// An `s3://` lake on an S3-API server of its own.
    S3(MotoServer),
}

impl LakeBackend {
    /// A lake on a freshly started S3-API server.
    pub fn s3() -> LakeBackend {
        LakeBackend::S3(MotoServer::start())
    }

    /// Points an in-process pipeline's config at this lake.
    fn configure(&self, config: &mut Config) {
        if let LakeBackend::S3(server) = self {
            config.lake.s3.endpoint = Some(server.endpoint.clone());
            config.lake.s3.access_key_id = Some("testing".into());
            config.lake.s3.secret_access_key = Some("testing".into());
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            LakeBackend::File => Vec::new(),
            LakeBackend::S3(server) => vec![
                ("MINIO_ENDPOINT", server.endpoint.clone()),
                ("MINIO_ROOT_USER", "testing".into()),
                ("MINIO_ROOT_PASSWORD", "testing".into()),
            ],
        }
    }
}

/// A moto S3 server on a loopback port, killed on drop.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl MotoServer {
    /// Starts the server and waits until it answers. Panics (the test fails, it is not
    /// skipped) when moto is not installed.
    pub fn start() -> MotoServer {
        let bin = std::env::var("CLICKSTREAM_MOTO_SERVER").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/clickstream-venv/bin/moto_server")
        });
        assert!(
            std::path::Path::new(&bin).exists(),
            "moto_server not found at {bin}: run scripts/test, which installs it, or set \
             CLICKSTREAM_MOTO_SERVER"
        );
        // Port 0: the system picks a free port, and werkzeug says which once it listens.
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, listening) = std::sync::mpsc::channel();
        // Reads the server's log to the end, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("Running on http://") {
                    let _ = found.send(line[at + "Running on ".len()..].trim().to_string());
                }
            }
        });
        let endpoint = listening
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("moto server at {bin} did not say where it listens: {e}"));
        MotoServer { child, endpoint }
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never
    /// answered, as with a store that hangs. Its data stays in memory.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
