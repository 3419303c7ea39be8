//! Running pipelines: one thread each, reading its source's topic, transforming batches of
//! records with its statement and writing the rows with its offsets after them
//! ([`henge_ingest::Engine::append_from`]), so that what is durable and where to resume
//! never disagree.
//!
//! A batch is up to [`BATCH_RECORDS`] records or [`BATCH_BYTES`] of them, or what arrived
//! within [`BATCH_WAIT`] of its first. A record that does not parse, or whose rows do not fit the table, is skipped and
//! counted (or, with `on_error = 'stop'`, stops the pipeline before it: the records before
//! it are written, and resuming reads it again). Brokers that are down are retried with
//! back-off, and every state change is logged and shown in `sys.pipelines`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use henge_ingest::kafka::{self, Record, TopicReader};
use henge_ingest::{Engine, SessionWrites};
use henge_planner::pipeline::Transform;
use henge_storage::stream::{Offsets, OnDataLoss, OnError, PipelineDef, SourceDef};

/// The most records in one batch (one log record, one transform).
pub const BATCH_RECORDS: usize = 16_384;
/// The most bytes of record keys and values in one batch (records are copied out of the
/// client to be decoded together).
pub const BATCH_BYTES: usize = 32 << 20;
/// How long a batch waits for more records after its first.
pub const BATCH_WAIT: Duration = Duration::from_millis(50);
/// How often the topic's partitions and high watermarks are looked at again.
const REFRESH: Duration = Duration::from_secs(5);
/// The longest wait between attempts to reach the brokers.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The pipelines this server runs.
pub struct Pipelines {
    engine: Arc<Engine>,
    query_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    runtime: tokio::runtime::Handle,
    running: Mutex<HashMap<u64, Running>>,
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Pipelines {
    pub fn new(
        engine: Arc<Engine>,
        query_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
        runtime: tokio::runtime::Handle,
    ) -> Pipelines {
        Pipelines {
            engine,
            query_env,
            runtime,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts every pipeline that is not paused (at server start).
    pub fn start_all(&self) {
        for def in self.engine.pipelines() {
            if def.paused {
                self.engine.report(def.id, |s| s.state = "paused");
            } else {
                self.start(def);
            }
        }
    }

    /// Starts `def` (unless it runs already).
    pub fn start(&self, def: PipelineDef) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .get(&def.id)
            .is_some_and(|r| !r.thread.is_finished())
        {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            engine: self.engine.clone(),
            query_env: self.query_env.clone(),
            runtime: self.runtime.clone(),
            stop: stop.clone(),
            def: def.clone(),
        };
        self.engine.report(def.id, |s| {
            s.state = "starting";
            s.detail = None;
        });
        let spawned = std::thread::Builder::new()
            .name(format!("henge-pipeline-{}", def.id))
            .spawn(move || worker.run());
        match spawned {
            Ok(thread) => {
                running.insert(def.id, Running { stop, thread });
            }
            Err(e) => self.engine.report(def.id, |s| {
                s.state = "failed";
                s.detail = Some(format!("could not start its thread: {e}"));
            }),
        }
    }

    /// Stops pipeline `id` and waits for its thread (blocking: call off the runtime).
    pub fn stop(&self, id: u64) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(running) = running {
            running.stop.store(true, Ordering::SeqCst);
            let _ = running.thread.join();
        }
    }

    /// Stops every pipeline (at shutdown).
    pub fn stop_all(&self) {
        let ids: Vec<u64> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.stop(id);
        }
    }
}

/// Why a pipeline's session with the brokers ended.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// Cannot go on until someone changes something (its statement no longer plans, a
    /// record stopped it): `failed`.
    Failed(String),
    /// Worth trying again after a while (brokers down, the table busy).
    Retry(String),
}

struct Worker {
    engine: Arc<Engine>,
    query_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    def: PipelineDef,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn run(self) {
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.session() {
                Ended::Stopped => {
                    self.engine.report(self.def.id, |s| {
                        s.state = "stopped";
                        s.detail = None;
                    });
                    return;
                }
                Ended::Failed(why) => {
                    self.engine.report(self.def.id, |s| {
                        s.state = "failed";
                        s.detail = Some(why);
                    });
                    return;
                }
                Ended::Retry(why) => {
                    tracing::warn!(pipeline = %self.def.name, error = %why, retry_in = ?backoff, "pipeline retrying");
                    self.engine.report(self.def.id, |s| {
                        s.state = "retrying";
                        s.detail = Some(why);
                    });
                    let until = Instant::now() + backoff;
                    while Instant::now() < until {
                        if self.stopping() {
                            self.engine.report(self.def.id, |s| s.state = "stopped");
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Plans the statement, connects and reads until stopped or something goes wrong.
    fn session(&self) -> Ended {
        let id = self.def.id;
        let Some(source) = self.engine.source(&self.def.source) else {
            return Ended::Failed(format!("source \"{}\" does not exist", self.def.source));
        };
        let Some(table) = self.engine.table(&self.def.table) else {
            return Ended::Failed(format!("table \"{}\" does not exist", self.def.table));
        };
        let transform =
            match self
                .runtime
                .block_on(plan(&self.engine, &self.query_env, &self.def, &source))
            {
                Ok(transform) => transform,
                Err(e) => return Ended::Failed(format!("its statement does not plan: {e}")),
            };
        let source_table = Arc::new(kafka::source_table(&source));
        let reader = match TopicReader::connect(&source, &format!("henge-pipeline-{id}")) {
            Ok(reader) => reader,
            Err(e) => return Ended::Failed(format!("cannot make a Kafka client: {e}")),
        };
        let mut offsets = self.engine.pipeline_offsets(id);
        if let Err(e) = self.follow_partitions(&reader, &source, &mut offsets) {
            return Ended::Retry(Self::explained(&reader, e));
        }
        // From the offsets whose rows are durable (new partitions were assigned above).
        if let Err(e) = reader.assign(&offsets) {
            return Ended::Retry(e.to_string());
        }
        self.engine.report(id, |s| {
            s.state = "running";
            s.detail = None;
        });
        // Three stages, so that reading a batch, decoding the one before and transforming
        // and writing (with its log's fsync) the one before that overlap: this thread
        // reads, a second decodes, a third writes, one batch queued between each two.
        let (sender, decoder_input) = std::sync::mpsc::sync_channel::<Work>(1);
        let (decoded_sender, writer_input) = std::sync::mpsc::sync_channel::<Work>(1);
        let writer_ended = AtomicBool::new(false);
        std::thread::scope(|scope| {
            // The decoder owns its ends of both channels: when the reader is done, its
            // input ends, and its output (the writer's input) ends with it.
            let (source, source_table) = (&source, &source_table);
            let writer_ended = &writer_ended;
            let decoder = std::thread::Builder::new()
                .name(format!("henge-pipeline-{id}-decode"))
                .spawn_scoped(scope, move || {
                    for work in decoder_input {
                        let work = work.decoded(source, source_table);
                        if decoded_sender.send(work).is_err() {
                            return;
                        }
                    }
                });
            if let Err(e) = decoder {
                return Ended::Retry(format!("could not start its decoding thread: {e}"));
            }
            let writer = std::thread::Builder::new()
                .name(format!("henge-pipeline-{id}-write"))
                .spawn_scoped(scope, move || {
                    let ended = self.write(writer_input, &transform, &table, source, source_table);
                    // The reader may be idle, sending nothing that would find the writer
                    // gone: it looks at this.
                    writer_ended.store(true, Ordering::SeqCst);
                    ended
                });
            let writer = match writer {
                Ok(writer) => writer,
                Err(e) => {
                    // Ends the decoder's input, so the scope can end.
                    drop(sender);
                    return Ended::Retry(format!("could not start its writer thread: {e}"));
                }
            };
            let read = self.read(&reader, source, offsets, sender, writer_ended);
            // The writer writes what was read before it stops (or has stopped on an
            // error, which is the reason to report).
            match writer.join() {
                Ok(Some(ended)) => ended,
                Ok(None) => read,
                Err(_) => Ended::Failed("its writer thread panicked".into()),
            }
        })
    }

    /// The reading stage: gathers batches of records and hands them on (to be decoded and
    /// written) with the offsets before and after them, until stopped, the writer has
    /// gone, or the brokers fail. `offsets` are where the consumer stands (what was handed on).
    fn read(
        &self,
        reader: &TopicReader,
        source: &SourceDef,
        mut offsets: Offsets,
        writer: std::sync::mpsc::SyncSender<Work>,
        writer_ended: &AtomicBool,
    ) -> Ended {
        let id = self.def.id;
        let mut refreshed = Instant::now();
        let mut rate = (Instant::now(), 0u64);
        loop {
            // Asked to stop, or the writer stopped on an error (which it reports).
            if self.stopping() || writer_ended.load(Ordering::SeqCst) {
                return Ended::Stopped;
            }
            if refreshed.elapsed() >= REFRESH {
                refreshed = Instant::now();
                if let Err(e) = self.follow_partitions(reader, source, &mut offsets) {
                    return Ended::Retry(Self::explained(reader, e));
                }
                let elapsed = rate.0.elapsed().as_secs_f64();
                let rows = self.engine.pipeline_status(id).rows;
                self.engine.report(id, |s| {
                    s.rows_per_second = (rows - rate.1) as f64 / elapsed.max(1e-3);
                });
                rate = (Instant::now(), rows);
            }
            let gathering = Instant::now();
            let (records, error) = self.gather(reader);
            let mut work = Vec::new();
            if !records.is_empty() {
                tracing::debug!(pipeline = %self.def.name, records = records.len(), gather = ?gathering.elapsed(), "batch read");
                let after = kafka::advance(&offsets, &records);
                let before = std::mem::replace(&mut offsets, after.clone());
                work.push(Work::Rows {
                    records,
                    decoded: None,
                    before,
                    after,
                });
            }
            match error {
                Some(e) if e.out_of_range => match self.data_loss(reader, source, &mut offsets) {
                    Ok(Some(after)) => work.push(Work::Offsets(after)),
                    Ok(None) => {}
                    Err(ended) => {
                        // What was read before it is written.
                        for work in work {
                            let _ = writer.send(work);
                        }
                        return ended;
                    }
                },
                // The client reconnects by itself; records that came are good.
                Some(_) if !work.is_empty() => {}
                Some(e) => return Ended::Retry(Self::explained(reader, e.to_string())),
                None if work.is_empty() => {
                    // Idle: the consumer may have passed records it does not hand out
                    // (those of aborted transactions, transaction markers); log where it
                    // is, so the lag reaches zero and a restart does not read them again.
                    if let Some(after) = skipped_to(reader, &offsets) {
                        offsets = after.clone();
                        work.push(Work::Offsets(after));
                    }
                }
                None => {}
            }
            for work in work {
                if writer.send(work).is_err() {
                    // The writer stopped on an error; it says why.
                    return Ended::Stopped;
                }
            }
        }
    }

    /// After the consumer found a partition's next offset out of its range: the records
    /// there were deleted before they were read (retention), or the topic was made again.
    /// Fails the pipeline, or moves those partitions to their first or last offset as the
    /// source says (the offsets to write); `None` when no partition is out of range.
    fn data_loss(
        &self,
        reader: &TopicReader,
        source: &SourceDef,
        offsets: &mut Offsets,
    ) -> Result<Option<Offsets>, Ended> {
        let mut after = offsets.clone();
        let partitions: Vec<i32> = offsets.keys().copied().collect();
        let marks = reader
            .all_watermarks(&partitions)
            .map_err(|e| Ended::Retry(Self::explained(reader, e.to_string())))?;
        for (partition, (low, high)) in marks {
            let Some(&offset) = offsets.get(&partition) else {
                continue;
            };
            if (low..=high).contains(&offset) {
                continue;
            }
            let what = match offset < low {
                true => format!(
                    "offset {offset} is no longer in the topic (its earliest is {low}): records were deleted before they were read"
                ),
                false => format!(
                    "offset {offset} is past the partition's end ({high}): was the topic made again?"
                ),
            };
            let to = match source.kafka.on_data_loss {
                OnDataLoss::Fail => {
                    return Err(Ended::Failed(format!(
                        "partition {partition}: {what}; ALTER PIPELINE … RESET OFFSETS goes on (or a source with on_data_loss = 'earliest' or 'latest')"
                    )))
                }
                OnDataLoss::Earliest => low,
                OnDataLoss::Latest => high,
            };
            tracing::warn!(pipeline = %self.def.name, partition, offset, resumed_at = to, "{what}");
            self.engine.report(self.def.id, |s| {
                s.lose(
                    partition,
                    offset,
                    (to - offset).max(0) as u64,
                    format!("{what}; read on from offset {to}"),
                )
            });
            after.insert(partition, to);
        }
        // Assigned again, also where none is out of range any more: librdkafka stopped
        // fetching the partition it reported.
        reader
            .assign(&after)
            .map_err(|e| Ended::Retry(Self::explained(reader, e.to_string())))?;
        if after == *offsets {
            return Ok(None);
        }
        *offsets = after.clone();
        Ok(Some(after))
    }
    /// The writing stage: transforms and writes each batch with its offsets, in order,
    /// until the reader is done (`None`) or a write fails (why).
    fn write(
        &self,
        work: std::sync::mpsc::Receiver<Work>,
        transform: &Transform,
        table: &Arc<henge_ingest::engine::Table>,
        source: &SourceDef,
        source_table: &Arc<henge_storage::TableDef>,
    ) -> Option<Ended> {
        for work in work {
            let written = match work {
                Work::Rows {
                    records,
                    decoded,
                    before,
                    after,
                } => self.ingest(
                    transform,
                    table,
                    &before,
                    after,
                    &records,
                    // Decoded by the decoding stage; here only if it was not.
                    decoded.unwrap_or_else(|| kafka::decode(source, source_table, &records)),
                ),
                Work::Offsets(after) => self
                    .runtime
                    .block_on(self.engine.append_from(
                        table,
                        Vec::new(),
                        Some((self.def.id, &after)),
                    ))
                    .map(|_| ())
                    .map_err(|e| Ended::Retry(format!("writing offsets failed: {e}"))),
            };
            if let Err(ended) = written {
                return Some(ended);
            }
        }
        None
    }

    /// `why`, with what the Kafka client last said about its brokers, which often says
    /// more (a refused password behind a failed metadata request).
    fn explained(reader: &TopicReader, why: String) -> String {
        match reader.take_client_error() {
            Some(said) if !why.contains(&said) => format!("{why} ({said})"),
            _ => why,
        }
    }

    /// Assigns the topic's partitions, new ones from the source's start position (the
    /// first time) or from their beginning (partitions added later), and notes each one's
    /// high watermark.
    fn follow_partitions(
        &self,
        reader: &TopicReader,
        source: &SourceDef,
        offsets: &mut Offsets,
    ) -> Result<(), String> {
        let partitions = reader.partitions().map_err(|e| e.to_string())?;
        let new: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| !offsets.contains_key(p))
            .collect();
        if !new.is_empty() {
            let start = match offsets.is_empty() {
                true => source.kafka.start,
                false => henge_storage::stream::StartAt::Earliest,
            };
            let found = reader
                .start_offsets(&new, start)
                .map_err(|e| e.to_string())?;
            offsets.extend(found);
            reader.assign(offsets).map_err(|e| e.to_string())?;
        }
        let marks = reader
            .all_watermarks(&partitions)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(partition, (_, high))| (partition, high))
            .collect();
        self.engine
            .report(self.def.id, |s| s.high_watermarks = marks);
        Ok(())
    }

    /// The next batch of records: up to [`BATCH_RECORDS`] or [`BATCH_BYTES`], or what
    /// came within [`BATCH_WAIT`] of the first; and the error that ended it, if one did.
    fn gather(&self, reader: &TopicReader) -> (Vec<Record>, Option<kafka::KafkaError>) {
        let mut records = Vec::with_capacity(BATCH_RECORDS);
        let mut bytes = 0;
        let mut first: Option<Instant> = None;
        let mut wait = Duration::from_millis(100);
        while records.len() < BATCH_RECORDS && bytes < BATCH_BYTES && !self.stopping() {
            // Read for each record: a batch must not outlast BATCH_WAIT when records
            // trickle in (a batch closed late is lag).
            if let Some(at) = first {
                match BATCH_WAIT.checked_sub(at.elapsed()) {
                    Some(left) => wait = left,
                    None => break,
                }
            }
            match reader.poll(wait) {
                Some(Ok(record)) => {
                    first.get_or_insert_with(Instant::now);
                    bytes += record.key.as_ref().map_or(0, Vec::len)
                        + record.value.as_ref().map_or(0, Vec::len);
                    records.push(record);
                }
                Some(Err(e)) => return (records, Some(e)),
                None => break,
            }
        }
        (records, None)
    }

    /// Writes the rows of `records` (`decoded`) with the offsets after them (`after`, on
    /// top of `offsets` before them).
    fn ingest(
        &self,
        transform: &Transform,
        table: &Arc<henge_ingest::engine::Table>,
        offsets: &Offsets,
        after: Offsets,
        records: &[Record],
        decoded: kafka::Decoded,
    ) -> Result<(), Ended> {
        let id = self.def.id;
        let stop = self.def.on_error == OnError::Stop;
        // The whole batch at once: the statement and the append's checks run once.
        if !stop || decoded.errors.is_empty() {
            let transforming = Instant::now();
            if let Ok(rows) = self
                .runtime
                .block_on(transform.run(decoded.batches.clone()))
            {
                let transformed = transforming.elapsed();
                let appending = Instant::now();
                match self.runtime.block_on(self.engine.append_from(
                    table,
                    rows,
                    Some((id, &after)),
                )) {
                    Ok(count) => {
                        tracing::debug!(pipeline = %self.def.name, rows = count, transform = ?transformed, append = ?appending.elapsed(), "batch written");
                        self.count(records, count, &decoded.errors);
                        return Ok(());
                    }
                    // Some row does not fit the table: find whose, below.
                    Err(e) if is_value_error(&e) => {}
                    Err(e) => return Err(Ended::Retry(format!("writing rows failed: {e}"))),
                }
            }
        }
        // Some record's values fail the statement or the table: each record on its own.
        let (each, bad) = self.one_by_one(transform, table, &decoded.batches, &decoded.rows);
        let mut errors = decoded.errors;
        errors.extend(bad);
        errors.sort_by_key(|e| (e.0, e.1));
        let first = errors.first().filter(|_| stop).cloned();
        // With on_error = 'stop', only what comes before the first bad record is written.
        let before = |partition: i32, offset: i64| match &first {
            Some((p, o, _)) => partition != *p || offset < *o,
            None => true,
        };
        let kept: Vec<Record> = records
            .iter()
            .filter(|r| before(r.partition, r.offset))
            .cloned()
            .collect();
        let rows: Vec<RecordBatch> = each
            .into_iter()
            .filter(|((p, o), _)| before(*p, *o))
            .flat_map(|(_, rows)| rows)
            .collect();
        let after = kafka::advance(offsets, &kept);
        let count = self
            .runtime
            .block_on(self.engine.append_from(table, rows, Some((id, &after))))
            .map_err(|e| Ended::Retry(format!("writing rows failed: {e}")))?;
        match first {
            Some(first) => {
                self.count(&kept, count, std::slice::from_ref(&first));
                Err(Ended::Failed(format!(
                    "record at partition {}, offset {} cannot be ingested: {}",
                    first.0, first.1, first.2
                )))
            }
            None => {
                self.count(records, count, &errors);
                Ok(())
            }
        }
    }

    /// Adds a written batch to what the pipeline reports.
    fn count(&self, records: &[Record], rows: u64, errors: &[(i32, i64, String)]) {
        let bytes: u64 = records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
            .sum();
        self.engine.report(self.def.id, |s| {
            s.records += records.len() as u64;
            s.rows += rows;
            s.bytes += bytes;
            s.skip(errors);
        });
    }

    /// Each record's rows, its row transformed alone, leaving out those whose transform
    /// fails or whose rows do not fit the table (those are the errors).
    #[allow(clippy::type_complexity)]
    fn one_by_one(
        &self,
        transform: &Transform,
        table: &henge_ingest::engine::Table,
        batches: &[RecordBatch],
        records: &[(i32, i64)],
    ) -> (Vec<((i32, i64), Vec<RecordBatch>)>, Vec<(i32, i64, String)>) {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        let mut at = 0;
        for batch in batches {
            for i in 0..batch.num_rows() {
                let (partition, offset) = records[at];
                at += 1;
                let out = self
                    .runtime
                    .block_on(transform.run(vec![batch.slice(i, 1)]));
                let checked = out.map_err(|e| e.to_string()).and_then(|out| {
                    for b in &out {
                        self.engine
                            .admissible(table, b.clone())
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(out)
                });
                match checked {
                    Ok(out) => rows.push(((partition, offset), out)),
                    Err(why) => errors.push((partition, offset, why)),
                }
            }
        }
        (rows, errors)
    }
}

/// What the reader hands the writer.
enum Work {
    /// A batch of records (decoded by the second stage), and the pipeline's offsets
    /// before and after it.
    Rows {
        records: Vec<Record>,
        decoded: Option<kafka::Decoded>,
        before: Offsets,
        after: Offsets,
    },
    /// Offsets the consumer moved past without records (written with no rows).
    Offsets(Offsets),
}

impl Work {
    /// The work with its records decoded.
    fn decoded(self, source: &SourceDef, source_table: &Arc<henge_storage::TableDef>) -> Work {
        match self {
            Work::Rows {
                records,
                decoded: None,
                before,
                after,
            } => {
                let decoding = Instant::now();
                let decoded = kafka::decode(source, source_table, &records);
                tracing::debug!(records = records.len(), decode = ?decoding.elapsed(), "batch decoded");
                Work::Rows {
                    records,
                    decoded: Some(decoded),
                    before,
                    after,
                }
            }
            other => other,
        }
    }
}

/// The offsets of partitions moved up to the consumer's position where that is ahead of
/// the last record handed out; `None` where none is.
fn skipped_to(reader: &TopicReader, offsets: &Offsets) -> Option<Offsets> {
    let positions = reader.positions().ok()?;
    let mut after = offsets.clone();
    for (partition, position) in positions {
        if let Some(offset) = after.get_mut(&partition) {
            if position > *offset {
                *offset = position;
            }
        }
    }
    (after != *offsets).then_some(after)
}

/// Whether an append failed on its rows' values (SQLSTATE classes 22 and 23), which a
/// record at a time can find, rather than on the server (memory, the log).
fn is_value_error(e: &henge_ingest::Error) -> bool {
    let code = e.sqlstate().code();
    code.starts_with("22") || code.starts_with("23")
}

/// Plans pipeline `def`'s statement over `source` (also to check it when created).
pub async fn plan(
    engine: &Arc<Engine>,
    query_env: &Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    def: &PipelineDef,
    source: &SourceDef,
) -> Result<Transform, datafusion::error::DataFusionError> {
    let table = engine.table(&def.table).ok_or_else(|| {
        datafusion::error::DataFusionError::Plan(format!(
            "relation \"{}\" does not exist",
            def.table
        ))
    })?;
    let ctx = henge_planner::new_context(
        engine.clone(),
        1,
        Arc::new(henge_planner::Settings::new()),
        query_env.clone(),
        Arc::new(SessionWrites::default()),
    );
    let defaults =
        henge_planner::table::HengeTable::new(engine.clone(), table.clone()).column_defaults();
    Transform::plan(
        &ctx,
        &def.query,
        &kafka::source_table(source),
        &table.def,
        defaults,
    )
    .await
}
