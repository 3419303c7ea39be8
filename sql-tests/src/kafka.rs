//! A real Apache Kafka broker for stream tests (`sql-tests/kafka/broker.sh`: single node,
//! KRaft, loopback), and a producer on librdkafka to feed it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// A broker of its own, stopped when dropped.
pub struct KafkaBroker {
    dir: tempfile::TempDir,
    port: u16,
}

/// The broker script of the checkout the tests run in: cargo names the package's directory
/// when it runs a test, which may not be the one the binary was built in (a target
/// directory shared between clones keeps a binary another clone built).
fn script() -> PathBuf {
    let package =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(package).join("kafka/broker.sh")
}

/// Four free consecutive ports (plaintext, controller, SASL, SSL).
fn free_ports() -> u16 {
    for _ in 0..100 {
        let Ok(first) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = first.local_addr() else {
            continue;
        };
        let port = addr.port();
        if port > 65_000 {
            continue;
        }
        let others = (1..4).all(|i| TcpListener::bind(("127.0.0.1", port + i)).is_ok());
        if others {
            return port;
        }
    }
    panic!("no four free consecutive ports");
}

impl KafkaBroker {
    /// Formats a fresh log directory and starts the broker; panics if it cannot (the
    /// stream tests need Java and Maven, which `.ci/run` installs).
    pub fn start() -> KafkaBroker {
        // The ports were free when chosen, but another test's connection may take one
        // before the broker binds it (seconds later, as Java starts): then other ports.
        for _ in 0..2 {
            let dir = tempfile::tempdir().expect("broker directory");
            let port = free_ports();
            let broker = KafkaBroker { dir, port };
            if broker.try_run(&["start", &broker.path(), &port.to_string()]) {
                return broker;
            }
        }
        let dir = tempfile::tempdir().expect("broker directory");
        let port = free_ports();
        let broker = KafkaBroker { dir, port };
        broker.run(&["start", &broker.path(), &port.to_string()]);
        broker
    }

    fn path(&self) -> String {
        self.dir.path().join("broker").display().to_string()
    }

    fn run(&self, args: &[&str]) {
        assert!(self.try_run(args), "kafka/broker.sh {args:?} failed");
    }

    /// Whether `kafka/broker.sh args` succeeded.
    fn try_run(&self, args: &[&str]) -> bool {
        Command::new("bash")
            .arg(script())
            .args(args)
            .status()
            .expect("run kafka/broker.sh")
            .success()
    }

    /// `host:port` of the PLAINTEXT listener.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `host:port` of the SASL_PLAINTEXT listener (user henge, password henge-secret).
    pub fn sasl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port + 2)
    }

    /// `host:port` of the SSL listener (its certificate: [`KafkaBroker::ca_pem`]).
    pub fn ssl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port + 3)
    }

    /// The PEM file of the SSL listener's self-signed certificate.
    pub fn ca_pem(&self) -> String {
        self.dir
            .path()
            .join("broker/tls/ca.pem")
            .display()
            .to_string()
    }

    /// Stops the broker (with SIGKILL when `kill`), keeping its data.
    pub fn stop(&self, kill: bool) {
        let mut args = vec!["stop".to_owned(), self.path()];
        if kill {
            args.push("-9".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args);
    }

    /// Starts the stopped broker again.
    pub fn restart(&self) {
        self.run(&["restart", &self.path()]);
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin client")
    }

    /// Creates a topic of `partitions` partitions.
    pub async fn create_topic(&self, topic: &str, partitions: i32) {
        let results = self
            .admin()
            .create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("create topic");
        for result in results {
            result.expect("topic created");
        }
    }

    /// Grows a topic to `partitions` partitions.
    pub async fn add_partitions(&self, topic: &str, partitions: usize) {
        let results = self
            .admin()
            .create_partitions(
                &[NewPartitions::new(topic, partitions)],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("add partitions");
        for result in results {
            result.expect("partitions added");
        }
    }

    /// Waits until `producer` sees `partitions` partitions of `topic`: a producer asked
    /// for a partition its metadata does not have yet refuses the record at once.
    pub async fn wait_for_partitions(
        &self,
        producer: &FutureProducer,
        topic: &str,
        partitions: usize,
    ) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let seen = tokio::task::block_in_place(|| {
                producer
                    .client()
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .ok()
                    .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            });
            if seen == Some(partitions) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{topic} has {seen:?} partitions, not {partitions}, after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deletes the records of `partition` of `topic` before offset `before`, as the
    /// topic's retention would.
    pub async fn delete_records(&self, topic: &str, partition: i32, before: i64) {
        let mut offsets = rdkafka::TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, partition, rdkafka::Offset::Offset(before))
            .expect("offset");
        let deleted = self
            .admin()
            .delete_records(
                &offsets,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("delete records");
        for element in deleted.elements() {
            element.error().expect("records deleted");
        }
    }

    /// A producer; `settings` add to or override the defaults (`compression.type`,
    /// `transactional.id`, …).
    pub fn producer(&self, settings: &[(&str, &str)]) -> FutureProducer {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        config.create().expect("producer")
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.path(), "-9"])
            .status();
    }
}

/// Sends `value` (with `key`) to `partition` of `topic` and waits for the acknowledgement.
pub async fn send(producer: &FutureProducer, topic: &str, partition: i32, key: &str, value: &str) {
    let record = FutureRecord::to(topic)
        .partition(partition)
        .key(key)
        .payload(value);
    producer
        .send(record, Duration::from_secs(60))
        .await
        .map_err(|(e, _)| e)
        .expect("record acknowledged");
}

/// Waits until every record queued in `producer` is acknowledged.
pub fn flush(producer: &FutureProducer) {
    producer
        .flush(Duration::from_secs(60))
        .expect("records acknowledged");
}
