//! The segment lifecycle at scale: the server's memory while it loads (sampled from /proc),
//! and a soak — a steady event stream loaded for minutes with queries beside it, the
//! server's memory and write-ahead log sampled every second and plotted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use plotters::prelude::*;

use crate::systems::henge::Henge;
use crate::{percentile, Result};

/// What the sampler saw at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the sampler started.
    pub at: Duration,
    /// Resident memory of the process, bytes.
    pub rss: u64,
    /// Of which anonymous (not pages of mapped files such as segments), bytes.
    pub anon: u64,
    /// Bytes of the write-ahead log's files.
    pub wal: u64,
    /// The caller's row counter at that moment.
    pub rows: u64,
}

/// Samples a process's resident memory and its WAL directory in a thread of its own.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    rows: Arc<AtomicU64>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(pid: u32, wal_dir: PathBuf, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let rows = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, rows) = (stop.clone(), rows.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut samples = Vec::new();
                loop {
                    samples.push(Sample {
                        at: start.elapsed(),
                        rss: rss_bytes(pid).unwrap_or(0),
                        anon: status_bytes(pid, "RssAnon:").unwrap_or(0),
                        wal: dir_bytes(&wal_dir),
                        rows: rows.load(Ordering::Relaxed),
                    });
                    if stop.load(Ordering::Relaxed) {
                        return samples;
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Sampler { stop, rows, thread }
    }

    /// A counter the caller advances; each sample records it.
    pub fn rows(&self) -> Arc<AtomicU64> {
        self.rows.clone()
    }

    /// Stops sampling (after one last sample) and returns the samples.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The largest resident memory among `samples`.
pub fn peak_rss(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| s.rss).max().unwrap_or(0)
}

/// The largest anonymous resident memory among `samples`.
pub fn peak_anon(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| s.anon).max().unwrap_or(0)
}

/// VmRSS of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The size `key` (e.g. `RssAnon:`) of process `pid`'s /proc status, in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Bytes of the files directly in `dir` (0 if it cannot be read).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// What a soak measured.
pub struct Soak {
    pub seconds: u64,
    /// Rows per second asked for, and what was loaded.
    pub target_rate: u64,
    pub rows: u64,
    pub samples: Vec<Sample>,
    /// Queries run beside the load, and their latencies.
    pub queries: usize,
    pub query_p50: Duration,
    pub query_p99: Duration,
    /// The ingest memory budget, from sys.ingest.
    pub budget: u64,
    /// Segments by state at the end, from sys.segments.
    pub segments: Vec<(String, u64)>,
}

impl Soak {
    pub fn achieved_rate(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1) as f64
    }

    /// Peak resident memory over the first half of the run and over the last, each with
    /// its anonymous part: `((rss, anon), (rss, anon))`.
    pub fn rss_halves(&self) -> ((u64, u64), (u64, u64)) {
        let half = Duration::from_secs(self.seconds / 2);
        let (first, second): (Vec<Sample>, Vec<Sample>) =
            self.samples.iter().partition(|s| s.at < half);
        let peaks = |s: &[Sample]| (peak_rss(s), peak_anon(s));
        (peaks(&first), peaks(&second))
    }

    pub fn peak_wal(&self) -> u64 {
        self.samples.iter().map(|s| s.wal).max().unwrap_or(0)
    }
}

/// Loads the event stream into a fresh Henge at `rate` rows per second for `seconds`, its
/// timestamps the wall clock's (minute segments, a 10-second window period, so chunks close,
/// are handed off and deleted from the buffer all the time), while a second connection
/// queries it; every count it sees must lie between the rows acknowledged before the query
/// and those acknowledged after it plus one batch. `events_tsv` is COPY text of the events,
/// whose rows are sent again and again with new timestamps.
pub async fn soak(
    binary: &Path,
    work: &Path,
    events_tsv: &Path,
    seconds: u64,
    rate: u64,
) -> Result<Soak> {
    let henge = Henge::start_with(binary, work, "wal_fsync = true").await?;
    let columns = crate::data::events_def()
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.ty.sql_name(),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    henge
        .client
        .execute(&format!(
            "CREATE TABLE events ({columns}) WITH (time_column = 'ts', \
             segment_granularity = 'minute', window_period = '10 seconds')"
        ))
        .await?;
    let text = std::fs::read_to_string(events_tsv)?;
    let tails: Arc<Vec<String>> = Arc::new(
        text.lines()
            .filter_map(|line| line.split_once('\t').map(|(_, rest)| rest.to_owned()))
            .collect(),
    );
    drop(text);
    if tails.is_empty() {
        return Err("the event file has no rows".into());
    }

    let sampler = Sampler::start(
        henge.pid(),
        henge.data_path().join("wal"),
        Duration::from_secs(1),
    );
    let acked = sampler.rows();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // At most this many rows per COPY: ten per second.
    let batch_limit = (rate / 10).max(1);

    let writer = {
        let client = henge.connect().await?;
        let (acked, tails) = (acked.clone(), tails.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let mut sent = 0u64;
            let mut next = 0usize;
            while Instant::now() < deadline {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                if due <= sent {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let n = (due - sent).min(batch_limit);
                let now = now_micros();
                let mut chunk = String::with_capacity(n as usize * 160);
                for i in 0..n {
                    let at =
                        arrow::temporal_conversions::timestamp_us_to_datetime(now - (n - i) as i64)
                            .expect("the clock is in range");
                    chunk.push_str(&at.format("%Y-%m-%d %H:%M:%S%.6f\t").to_string());
                    chunk.push_str(&tails[next]);
                    chunk.push('\n');
                    next = (next + 1) % tails.len();
                }
                let loaded = client.copy_text("events", Bytes::from(chunk)).await?;
                if loaded != n {
                    return Err(format!("COPY loaded {loaded} of {n} rows").into());
                }
                sent += n;
                acked.store(sent, Ordering::SeqCst);
            }
            Ok::<u64, crate::Error>(sent)
        })
    };

    let reader = {
        let client = henge.connect().await?;
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut counting = true;
            while Instant::now() < deadline {
                let before = acked.load(Ordering::SeqCst);
                let sql = if counting {
                    "SELECT count(*) FROM events".to_owned()
                } else {
                    let since = arrow::temporal_conversions::timestamp_us_to_datetime(
                        now_micros() - 60_000_000,
                    )
                    .expect("the clock is in range");
                    format!(
                        "SELECT country, count(*), sum(added) FROM events WHERE ts >= \
                         TIMESTAMP '{}' GROUP BY country ORDER BY 2 DESC LIMIT 5",
                        since.format("%Y-%m-%d %H:%M:%S")
                    )
                };
                let answer = client.query(&sql).await?;
                let after = acked.load(Ordering::SeqCst);
                if counting {
                    let count: u64 = answer.rows[0][0].parse()?;
                    if count < before || count > after + batch_limit {
                        return Err(format!(
                            "count(*) was {count} with {before} rows acknowledged before the \
                             query and {after} after it"
                        )
                        .into());
                    }
                }
                latencies.push(answer.elapsed);
                counting = !counting;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok::<Vec<Duration>, crate::Error>(latencies)
        })
    };

    let rows = writer.await??;
    let mut latencies = reader.await??;
    let samples = sampler.finish();
    let answer = henge.client.query("SELECT count(*) FROM events").await?;
    let counted: u64 = answer.rows[0][0].parse()?;
    if counted != rows {
        return Err(format!("the soak loaded {rows} rows but count(*) says {counted}").into());
    }
    let budget: u64 = henge
        .client
        .query("SELECT memory_budget FROM sys.ingest WHERE \"table\" IS NULL")
        .await?
        .rows[0][0]
        .parse()?;
    let segments = henge
        .client
        .query("SELECT state, count(*) FROM sys.segments GROUP BY state ORDER BY state")
        .await?
        .rows
        .iter()
        .map(|r| Ok((r[0].clone(), r[1].parse()?)))
        .collect::<Result<Vec<(String, u64)>>>()?;
    latencies.sort();
    Ok(Soak {
        seconds,
        target_rate: rate,
        rows,
        samples,
        queries: latencies.len(),
        query_p50: percentile(&latencies, 50.0),
        query_p99: percentile(&latencies, 99.0),
        budget,
        segments,
    })
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The soak's chart: resident memory (with the ingest budget) and WAL size over time, and
/// the rows loaded.
pub fn soak_chart(soak: &Soak, path: &Path) -> Result<()> {
    crate::report::register_font()?;
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| format!("chart: {e}"))?;
    let panels = root.split_evenly((2, 1));
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let end = soak
        .samples
        .last()
        .map_or(1.0, |s| s.at.as_secs_f64())
        .max(1.0);
    let series = [
        (
            "resident memory (MiB)",
            soak.samples
                .iter()
                .map(|s| (s.at.as_secs_f64(), mib(s.rss)))
                .collect::<Vec<_>>(),
            Some(mib(soak.budget)),
            RGBColor(214, 96, 39),
        ),
        (
            "write-ahead log (MiB)",
            soak.samples
                .iter()
                .map(|s| (s.at.as_secs_f64(), mib(s.wal)))
                .collect(),
            None,
            RGBColor(70, 130, 180),
        ),
    ];
    for (panel, (label, points, budget, color)) in panels.iter().zip(series) {
        let high = points
            .iter()
            .map(|p| p.1)
            .fold(budget.unwrap_or(0.0), f64::max)
            * 1.15
            + 1.0;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "Soak: {} events/s asked, {:.0}/s loaded for {} s with queries — {label}",
                    soak.target_rate,
                    soak.achieved_rate(),
                    soak.seconds
                ),
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..end, 0.0..high)
            .map_err(|e| format!("chart: {e}"))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(label)
            .draw()
            .map_err(|e| format!("chart: {e}"))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| format!("chart: {e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        if let Some(budget) = budget {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, budget), (end, budget)],
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| format!("chart: {e}"))?
                .label("ingest memory budget")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
        }
        crate::report::legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(|e| format!("chart: {e}"))?;
    Ok(())
}

/// One read of a whole table by a client, with the server's memory sampled beside it.
pub struct Stream {
    /// How the client read it.
    pub how: &'static str,
    pub rows: u64,
    pub elapsed: Duration,
    /// The server's resident memory just before the query, and its peak during it.
    pub rss_before: u64,
    pub peak_rss: u64,
    /// The peak of its anonymous part (resident memory less mapped files).
    pub peak_anon: u64,
}

/// `SELECT * FROM table` read to its end three ways — the simple protocol, the extended
/// protocol (one Execute without a row limit) and psql's `COPY (SELECT *) TO STDOUT` — each
/// client dropping rows as they arrive, while the server's resident memory is sampled. Every
/// read must return `rows` rows.
pub async fn stream_reads(henge: &Henge, table: &str, rows: u64) -> Result<Vec<Stream>> {
    use futures::TryStreamExt;
    let sql = format!("SELECT * FROM {table}");
    let mut reads = Vec::new();
    for how in [
        "simple protocol",
        "extended protocol",
        "psql, COPY (SELECT *) TO STDOUT",
    ] {
        let client = henge.connect().await?;
        let sampler = Sampler::start(
            henge.pid(),
            henge.data_path().join("wal"),
            Duration::from_millis(100),
        );
        let start = Instant::now();
        let counted = match how {
            "simple protocol" => {
                let messages = client.client.simple_query_raw(&sql).await?;
                futures::pin_mut!(messages);
                let mut n = 0u64;
                while let Some(message) = messages.try_next().await? {
                    if let tokio_postgres::SimpleQueryMessage::Row(_) = message {
                        n += 1;
                    }
                }
                n
            }
            "extended protocol" => {
                let no_params: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];
                let stream = client.client.query_raw(sql.as_str(), no_params).await?;
                futures::pin_mut!(stream);
                let mut n = 0u64;
                while stream.try_next().await?.is_some() {
                    n += 1;
                }
                n
            }
            _ => psql_copy_lines(henge.port(), &sql)?,
        };
        let elapsed = start.elapsed();
        let samples = sampler.finish();
        if counted != rows {
            return Err(format!("{how}: {sql} returned {counted} rows, not {rows}").into());
        }
        reads.push(Stream {
            how,
            rows: counted,
            elapsed,
            // The sampler's first sample is taken as it starts, before the query.
            rss_before: samples.first().map_or(0, |s| s.rss),
            peak_rss: peak_rss(&samples),
            peak_anon: peak_anon(&samples),
        });
    }
    Ok(reads)
}

/// Runs `psql -c "COPY (query) TO STDOUT"` against the server on `port` and counts the lines
/// it prints, reading them as they come.
fn psql_copy_lines(port: u16, query: &str) -> Result<u64> {
    use std::io::Read;
    let mut child = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("COPY ({query}) TO STDOUT"))
        .arg(format!(
            "host=127.0.0.1 port={port} user=henge dbname=henge"
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting psql: {e}"))?;
    let mut out = child.stdout.take().ok_or("psql has no stdout")?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = out.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("psql COPY TO STDOUT failed: {status}").into());
    }
    Ok(lines)
}
