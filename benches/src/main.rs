//! `henge-bench`: Henge side by side with DuckDB, DataFusion and PostgreSQL on the Druid
//! paper's TPC-H queries, ingest, INSERT latency and small-query throughput. Run it through
//! `benches/run`, which installs the peers and builds Henge first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use henge_bench::latency::{self, Inserts};
use henge_bench::lifecycle::{self, Sampler};
use henge_bench::queries::{compare, pushdown_queries, queries};
use henge_bench::report::{update_results, Lifecycle, LoadRow, PushdownRow, QueryRow, Report};
use henge_bench::systems::datafusion::DataFusion;
use henge_bench::systems::henge::Henge;
use henge_bench::systems::postgres::{find_bin_dir, Postgres};
use henge_bench::systems::python::{Engine, Peer};
use henge_bench::systems::System;
use henge_bench::{copy_text, data, median, Result};

#[derive(Parser)]
#[command(
    name = "henge-bench",
    about = "Henge against DuckDB, DataFusion and PostgreSQL"
)]
struct Args {
    /// TPC-H scale factor of lineitem (1 is about six million rows).
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Timed runs per query and system, after one warm-up (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Rows of the Druid-style event stream loaded for the ingest figures.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Single-row INSERTs per latency configuration.
    #[arg(long, default_value_t = 1000)]
    inserts: usize,
    /// Seconds per pgbench run.
    #[arg(long, default_value_t = 10)]
    pgbench_seconds: u64,
    /// Seconds of the soak (a steady event stream with queries beside it; 0: none).
    #[arg(long, default_value_t = 0)]
    soak_secs: u64,
    /// Rows per second the soak loads.
    #[arg(long, default_value_t = 100_000)]
    soak_rate: u64,
    /// Only Henge's lifecycle at this scale: the one COPY of lineitem with its memory, the
    /// restart, the CHECKPOINT, `SELECT *` read to its end and the soak; no peers, no
    /// queries. Its figures go to a section of their own in the results file.
    #[arg(long)]
    lifecycle_only: bool,
    /// Only the rollup comparison: the event stream (`--events` rows) loaded into a plain
    /// and a rolled-up Henge table, rows and bytes stored, load rate and query times of
    /// both, answers compared. Its figures go to a section of their own in the results file.
    #[arg(long)]
    rollup_only: bool,
    /// Only the Kafka pipeline runs (a broker from `--kafka-script`; `--events` events for
    /// the backlog and the kill -9 runs, `--kafka-rate` for `--kafka-secs` for the lag run).
    /// Its figures go to a section of their own in the results file.
    #[arg(long)]
    kafka_only: bool,
    /// Only the alert runs: COPY-to-notification latency (`--alert-samples` COPYs, each
    /// completing one match) and COPY's rate with `--alert-rules` rules over
    /// `--alert-keys` keys against none (`--alert-rows` rows each). Its figures go to a
    /// section of their own in the results file.
    #[arg(long)]
    alerts_only: bool,
    #[arg(long, default_value_t = 200)]
    alert_samples: usize,
    #[arg(long, default_value_t = 1_000_000)]
    alert_rows: usize,
    #[arg(long, default_value_t = 100)]
    alert_rules: usize,
    #[arg(long, default_value_t = 100_000)]
    alert_keys: usize,
    /// Events per second the lag run produces.
    #[arg(long, default_value_t = 100_000)]
    kafka_rate: u64,
    /// Seconds of the lag run.
    #[arg(long, default_value_t = 20)]
    kafka_secs: u64,
    /// The script that installs and starts Apache Kafka.
    #[arg(long, default_value = "sql-tests/kafka/broker.sh")]
    kafka_script: PathBuf,
    /// The henge binary (default: `henge` beside this program).
    #[arg(long)]
    henge: Option<PathBuf>,
    /// Directory of PostgreSQL's programs (default: the newest /usr/lib/postgresql/*/bin).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Python with the duckdb and chdb packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Where data files and databases go while the harness runs.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where the markdown table and chart are written.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
    /// The results file whose section for this scale factor is rewritten.
    #[arg(long, default_value = "benches/RESULTS.md")]
    results: PathBuf,
}

/// lineitem's table options in Henge: month segments on the ship date.
const LINEITEM_WITH: &str = "time_column = 'l_shipdate', segment_granularity = 'month'";

fn say(message: &str) {
    eprintln!("[henge-bench] {message}");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("henge-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let henge_bin = match &args.henge {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("henge"),
    };
    let pg_bin = match &args.pg_bin {
        Some(path) => path.clone(),
        None => find_bin_dir()?,
    };
    let work = match &args.work_dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::Builder::new().prefix("henge-bench-").tempdir()?,
    };
    std::fs::create_dir_all(&args.out)?;

    if args.kafka_only {
        return kafka_only(&args, &henge_bin, work.path(), cores).await;
    }
    if args.alerts_only {
        return alerts_only(&args, &henge_bin, work.path()).await;
    }
    let started = Instant::now();
    let lineitem_rows = match args.rollup_only {
        true => 0,
        false => {
            say(&format!("generating lineitem at scale factor {}", args.sf));
            write_lineitem(args.sf, work.path(), !args.lifecycle_only)?
        }
    };
    let events_file = work.path().join("events.tsv");
    let mut text = String::new();
    copy_text::encode(&data::events(args.events), &mut text);
    std::fs::write(&events_file, &text)?;
    say(&format!(
        "{lineitem_rows} lineitem rows and {} events in {:.1} s",
        args.events,
        started.elapsed().as_secs_f64()
    ));

    if args.rollup_only {
        return rollup_only(&args, &henge_bin, work.path(), &events_file).await;
    }
    if args.lifecycle_only {
        return lifecycle_only(&args, &henge_bin, work.path(), lineitem_rows, &events_file).await;
    }

    say("starting Henge, PostgreSQL, DuckDB and ClickHouse");
    let henge = Henge::start(&henge_bin, work.path(), true).await?;
    let postgres = Postgres::start(&pg_bin, cores).await?;
    let duckdb = Peer::start(Engine::DuckDb, &args.python, work.path())?;
    let clickhouse = Peer::start(Engine::ClickHouse, &args.python, work.path())?;
    let datafusion = DataFusion::new(&work.path().join("lineitem.parquet"), cores).await?;
    // Henge first: the others' answers are compared with its.
    let mut systems = vec![
        System::Henge(henge),
        System::Python(duckdb),
        System::Python(clickhouse),
        System::DataFusion(datafusion),
        System::Postgres(postgres),
    ];
    let mut versions = Vec::new();
    for system in &mut systems {
        versions.push((system.name().to_owned(), system.version().await?));
    }

    // Ingest: lineitem (then queried) and the event stream.
    let lineitem_columns = columns(&data::lineitem_def());
    let events_columns = columns(&data::events_def());
    let mut loads = Vec::new();
    let mut load_peak_rss = 0;
    for (table, cols, with, file) in [
        (
            "lineitem",
            &lineitem_columns,
            LINEITEM_WITH,
            work.path().join("lineitem.tsv"),
        ),
        (
            "events",
            &events_columns,
            "time_column = 'ts', segment_granularity = 'hour'",
            events_file.clone(),
        ),
    ] {
        for system in systems.iter_mut() {
            if matches!(system, System::DataFusion(_)) {
                continue;
            }
            say(&format!("loading {table} into {}", system.name()));
            let sampler = match system {
                System::Henge(henge) if table == "lineitem" => Some(Sampler::start(
                    henge.pid(),
                    henge.data_path().join("wal"),
                    Duration::from_millis(100),
                )),
                _ => None,
            };
            let load = system.load(table, cols, with, &file).await?;
            if let Some(sampler) = sampler {
                load_peak_rss = lifecycle::peak_rss(&sampler.finish());
                say(&format!(
                    "  peak resident memory {:.0} MiB",
                    load_peak_rss as f64 / 1048576.0
                ));
            }
            say(&format!(
                "  {} rows in {:.2} s",
                load.rows,
                load.elapsed.as_secs_f64()
            ));
            loads.push(LoadRow {
                table: table.to_owned(),
                system: system.name().to_owned(),
                rows: load.rows,
                elapsed: load.elapsed,
                cpu: load.cpu,
            });
        }
    }
    let System::Henge(henge) = &mut systems[0] else {
        unreachable!("Henge is first")
    };
    let after = after_load(henge, lineitem_rows).await?;
    let streams = stream_reads(henge, lineitem_rows).await?;

    let query_rows = run_queries(&mut systems, cores, args.runs, lineitem_rows).await?;
    let pushdown = run_pushdown(&mut systems, cores, args.runs).await?;

    // INSERT latency, with and without fsync in Henge, synchronous_commit on and off in
    // PostgreSQL, each row checked for from a second connection.
    let mut inserts = Vec::new();
    {
        let System::Henge(henge) = &systems[0] else {
            unreachable!("Henge is first")
        };
        inserts.push(
            insert_run(
                "Henge, WAL fsync on (default)",
                &henge.client,
                &henge.connect().await?,
                args.inserts,
            )
            .await?,
        );
        let unsynced = Henge::start(&henge_bin, work.path(), false).await?;
        inserts.push(
            insert_run(
                "Henge, WAL fsync off",
                &unsynced.client,
                &unsynced.connect().await?,
                args.inserts,
            )
            .await?,
        );
        let postgres = postgres_of(&systems);
        let writer = postgres.connect().await?;
        let reader = postgres.connect().await?;
        writer.execute(&latency::inserts_table("")).await?;
        let mut run = latency::inserts(
            "PostgreSQL, synchronous_commit on",
            &writer,
            &reader,
            args.inserts,
        )
        .await?;
        inserts.push(run);
        writer
            .execute("TRUNCATE inserts; SET synchronous_commit = off")
            .await?;
        run = latency::inserts(
            "PostgreSQL, synchronous_commit off",
            &writer,
            &reader,
            args.inserts,
        )
        .await?;
        inserts.push(run);
    }
    for i in &inserts {
        say(&format!(
            "{}: p50 {:?}, p99 {:?}, {} of {} visible",
            i.label, i.p50, i.p99, i.visible, i.count
        ));
    }

    let pgbench = run_pgbench(&systems, &pg_bin, work.path(), cores, args.pgbench_seconds).await?;

    let stem = format!("tpch-sf{}", args.sf);
    let soak = run_soak(&args, &henge_bin, work.path(), &events_file, &stem).await?;

    let report = Report {
        scale: args.sf,
        lineitem_rows,
        runs: args.runs,
        machine: machine(),
        date: today(),
        command: format!(
            "benches/run --sf {} --runs {}{}",
            args.sf,
            args.runs,
            match args.soak_secs {
                0 => String::new(),
                secs => format!(" --soak-secs {secs} --soak-rate {}", args.soak_rate),
            }
        ),
        systems: versions,
        queries: query_rows,
        pushdown,
        threads: cores,
        loads,
        checkpoint: after.checkpoint,
        segment_bytes: after.segment_bytes,
        lifecycle: after.lifecycle(load_peak_rss, soak, streams),
        inserts,
        pgbench,
        pgbench_clients: cores,
        pgbench_seconds: args.pgbench_seconds,
    };
    let chart = args.out.join(format!("{stem}.png"));
    report.chart(&chart)?;
    let chart_link = format!(
        "{}/{stem}.png",
        args.out
            .strip_prefix("benches")
            .unwrap_or(&args.out)
            .display()
    );
    let markdown = report.markdown(&chart_link);
    std::fs::write(
        args.out.join(format!("{stem}.md")),
        report.markdown(&format!("{stem}.png")),
    )?;
    update_results(&args.results, &format!("sf={}", args.sf), &markdown)?;
    std::io::stdout().write_all(markdown.as_bytes())?;
    say(&format!(
        "wrote {}, {} and {}",
        chart.display(),
        args.out.join(format!("{stem}.md")).display(),
        args.results.display()
    ));
    let differing: Vec<&str> = report
        .queries
        .iter()
        .filter(|q| !q.differences.is_empty())
        .map(|q| q.name.as_str())
        .chain(
            report
                .pushdown
                .iter()
                .filter(|p| !p.differences.is_empty())
                .map(|p| p.name.as_str()),
        )
        .collect();
    if !differing.is_empty() {
        return Err(format!("answers differ between systems: {}", differing.join(", ")).into());
    }
    Ok(())
}

/// `--lifecycle-only`: Henge alone loads lineitem in one COPY (its memory sampled), is
/// killed and restarted, checkpoints, streams `SELECT *` to clients and runs the soak.
async fn lifecycle_only(
    args: &Args,
    henge_bin: &Path,
    work: &Path,
    lineitem_rows: u64,
    events_file: &Path,
) -> Result<()> {
    let mut henge = Henge::start(henge_bin, work, true).await?;
    let version = henge.version().await?;
    say("loading lineitem into Henge");
    let sampler = Sampler::start(
        henge.pid(),
        henge.data_path().join("wal"),
        Duration::from_millis(100),
    );
    let load = henge
        .load(
            "lineitem",
            &columns(&data::lineitem_def()),
            LINEITEM_WITH,
            &work.join("lineitem.tsv"),
        )
        .await?;
    let load_peak_rss = lifecycle::peak_rss(&sampler.finish());
    say(&format!(
        "  {} rows in {:.2} s, peak resident memory {:.0} MiB",
        load.rows,
        load.elapsed.as_secs_f64(),
        load_peak_rss as f64 / 1048576.0
    ));
    let after = after_load(&mut henge, lineitem_rows).await?;
    let streams = stream_reads(&henge, lineitem_rows).await?;
    drop(henge);
    let stem = format!("tpch-sf{}-lifecycle", args.sf);
    let soak = run_soak(args, henge_bin, work, events_file, &stem).await?;
    let lifecycle = after.lifecycle(load_peak_rss, soak, streams);
    let header = format!(
        "### Henge's lifecycle, TPC-H lineitem at scale factor {} ({lineitem_rows} rows), \
         measured {}\n\n\
         Command: `benches/run --sf {} --lifecycle-only{}`\n\n\
         Machine: {}\n\n\
         System: {version}.\n\n\
         One COPY of lineitem: {} rows in {:.1} s ({} rows/s); the CHECKPOINT after the \
         restart: {:.1} s, {:.1} MB of segments.\n\n",
        args.sf,
        today(),
        args.sf,
        match args.soak_secs {
            0 => String::new(),
            secs => format!(" --soak-secs {secs} --soak-rate {}", args.soak_rate),
        },
        machine(),
        load.rows,
        load.elapsed.as_secs_f64(),
        (load.rows as f64 / load.elapsed.as_secs_f64().max(1e-9)).round(),
        after.checkpoint.as_secs_f64(),
        after.segment_bytes as f64 / 1e6,
    );
    let chart_dir = args
        .out
        .strip_prefix("benches")
        .unwrap_or(&args.out)
        .display()
        .to_string();
    let markdown = format!(
        "{header}{}\n",
        lifecycle.markdown(&format!("{chart_dir}/{stem}.png"))
    );
    std::fs::write(
        args.out.join(format!("{stem}.md")),
        format!("{header}{}\n", lifecycle.markdown(&format!("{stem}.png"))),
    )?;
    update_results(
        &args.results,
        &format!("sf={} lifecycle", args.sf),
        &markdown,
    )?;
    std::io::stdout().write_all(markdown.as_bytes())?;
    Ok(())
}

/// `--alerts-only`: alert latency and the cost of rules to ingest.
async fn alerts_only(args: &Args, henge_bin: &Path, work: &Path) -> Result<()> {
    let henge = Henge::start(henge_bin, work, true).await?;
    let version = henge.version().await?;
    say(&format!(
        "alerts: {} latency samples, then {} rows without rules and with {} rules over {} keys",
        args.alert_samples, args.alert_rows, args.alert_rules, args.alert_keys
    ));
    let figures = henge_bench::alerts::measure(
        &henge,
        args.alert_samples,
        args.alert_rows,
        args.alert_rules,
        args.alert_keys,
    )
    .await?;
    let markdown = format!(
        "### Alerts, measured {}\n\n\
         Command: `benches/run --alerts-only --alert-samples {} --alert-rows {} \
         --alert-rules {} --alert-keys {}`\n\n\
         Machine: {}\n\n\
         System: {version}, write-ahead log fsynced.\n\n\
         Latency: each sample is one COPY of three failed transactions of a new card, which \
         completes the rule \"three failures within an hour\"; timed from sending the COPY \
         to the notification at another, idle connection that LISTENs. A COPY is \
         acknowledged after its rows' matches are written and sent, so the notification \
         usually arrives first. Cost: the same transactions (ten COPYs in time order over a \
         day, {} cards) into a table without rules and into one watched by {} rules of three \
         shapes (counts of a category's failures, sums of a category's amounts, distinct \
         categories of big amounts), each partitioned by card.\n\n{}\n",
        today(),
        args.alert_samples,
        args.alert_rows,
        args.alert_rules,
        args.alert_keys,
        machine(),
        args.alert_keys,
        args.alert_rules,
        figures.markdown()
    );
    update_results(&args.results, "alerts", &markdown)?;
    std::io::stdout().write_all(markdown.as_bytes())?;
    Ok(())
}

/// `--rollup-only`: the event stream rolled up and not, side by side.
async fn rollup_only(args: &Args, henge_bin: &Path, work: &Path, events_file: &Path) -> Result<()> {
    let mut henge = Henge::start(henge_bin, work, true).await?;
    let version = henge.version().await?;
    say("loading the event stream into a plain and a rolled-up table");
    let columns = columns(&data::events_def());
    let figures =
        henge_bench::rollup::measure(&mut henge, events_file, args.runs, &columns).await?;
    let markdown = format!(
        "### Rollup, Druid-style event stream ({} events over one hour), measured {}\n\n\
         Command: `benches/run --rollup-only --events {} --runs {}`\n\n\
         Machine: {}\n\n\
         System: {version}.\n\n\
         `events_rolled` is rolled up by the hour on its five low-cardinality dimensions \
         (country, browser, os, device, language), keeping page, city, referrer and \
         campaign as their latest value (`ROLLUP LAST`) rather than grouping by them, and the \
         user as a HyperLogLog sketch (`ROLLUP HLL`); the metrics are summed. Query times are \
         medians of {} runs through the wire after a warm-up, the two tables alternating; \
         `users_by_country` is APPROX_COUNT_DISTINCT, whose answers may differ between the \
         tables within the sketch's error (5 % allowed).\n\n{}\n",
        args.events,
        today(),
        args.events,
        args.runs,
        machine(),
        args.runs,
        figures.markdown()
    );
    std::fs::write(args.out.join("rollup.md"), &markdown)?;
    update_results(&args.results, "rollup", &markdown)?;
    std::io::stdout().write_all(markdown.as_bytes())?;
    Ok(())
}

async fn kafka_only(args: &Args, henge_bin: &Path, work: &Path, cores: usize) -> Result<()> {
    use henge_bench::kafka;
    say("starting Apache Kafka");
    let broker = kafka::Broker::start(&args.kafka_script, work)?;
    let events = args.events as u64;
    // Each run on a Henge of its own, with the log fsynced and the default lifecycle.
    let config = "wal_fsync = true\n";
    say(&format!(
        "backlog: {events} events, then the pipeline, {} times",
        args.runs
    ));
    let version = Henge::start_with(henge_bin, work, config)
        .await?
        .version()
        .await?;
    let backlog = kafka::backlog(&broker, events, args.runs, || {
        Henge::start_with(henge_bin, work, config)
    })
    .await?;
    say(&format!(
        "  {} rows in a median {:.2} s",
        backlog.rows,
        backlog.median().as_secs_f64()
    ));
    say(&format!(
        "lag: {} events/s for {} s",
        args.kafka_rate, args.kafka_secs
    ));
    let henge = Henge::start_with(henge_bin, work, config).await?;
    let lag = kafka::lag(&henge, &broker, args.kafka_rate, args.kafka_secs).await?;
    say(&format!("  p50 {:?}, p99 {:?}", lag.at(50.0), lag.at(99.0)));
    drop(henge);
    say(&format!("kill -9: {events} events, Henge killed 3 times"));
    let mut henge = Henge::start_with(henge_bin, work, config).await?;
    let kills = kafka::kills(&mut henge, &broker, events, 3).await?;
    drop(henge);
    let markdown = format!(
        "### Streams in: a Kafka pipeline, measured {}\n\n\
         Command: `benches/run --kafka-only --events {} --runs {} --kafka-rate {} --kafka-secs {}`\n\n\
         Machine: {}; the broker (Apache Kafka, single node) on the same machine.\n\n\
         System: {version}, log fsynced.\n\n\
         One topic of {} partitions of JSON events (an ISO timestamp, eleven dimensions of \
         which two nested, four metrics, one as a string; LZ4-compressed batches), read by \
         a pipeline with JSON paths, a cast, `upper`/`lower`, a CASE and a filter that \
         drops one event in {}. The backlog is produced first and read from the earliest \
         offset by a new Henge each run; the lag is from producing a probe event to a query first returning it, \
         polled by one client as fast as it answers.\n\n{}\n",
        today(),
        args.events,
        args.runs,
        args.kafka_rate,
        args.kafka_secs,
        machine(),
        kafka::PARTITIONS,
        kafka::BOT_EVERY,
        kafka::markdown(&backlog, &lag, &kills, cores)
    );
    std::fs::write(args.out.join("kafka.md"), &markdown)?;
    update_results(&args.results, "kafka", &markdown)?;
    std::io::stdout().write_all(markdown.as_bytes())?;
    Ok(())
}

/// The soak, if `--soak-secs` asks for one, with the file name of its chart.
async fn run_soak(
    args: &Args,
    henge_bin: &Path,
    work: &Path,
    events_file: &Path,
    stem: &str,
) -> Result<Option<(lifecycle::Soak, String)>> {
    if args.soak_secs == 0 {
        return Ok(None);
    }
    say(&format!(
        "soak: {} rows/s for {} s",
        args.soak_rate, args.soak_secs
    ));
    let soak =
        lifecycle::soak(henge_bin, work, events_file, args.soak_secs, args.soak_rate).await?;
    let file = format!("{stem}-soak.png");
    lifecycle::soak_chart(&soak, &args.out.join(&file))?;
    say(&format!(
        "  {} rows ({:.0}/s), {} queries, peak RSS {:.0} MiB",
        soak.rows,
        soak.achieved_rate(),
        soak.queries,
        lifecycle::peak_rss(&soak.samples) as f64 / 1048576.0
    ));
    Ok(Some((soak, file)))
}

/// What the harness learns of Henge after its lineitem load.
struct AfterLoad {
    restart: Duration,
    budget: u64,
    checkpoint: Duration,
    segment_bytes: u64,
    segments: u64,
    intervals: u64,
}

impl AfterLoad {
    /// The lifecycle figures, with the load's peak memory, the soak and the reads.
    fn lifecycle(
        &self,
        load_peak_rss: u64,
        soak: Option<(lifecycle::Soak, String)>,
        streams: Vec<lifecycle::Stream>,
    ) -> Lifecycle {
        Lifecycle {
            load_peak_rss,
            budget: self.budget,
            restart: self.restart,
            segments: self.segments,
            intervals: self.intervals,
            soak,
            streams,
        }
    }
}

/// kill -9 of Henge right after the load and a restart (every row must be back), then a
/// CHECKPOINT and the segments it published.
async fn after_load(henge: &mut Henge, lineitem_rows: u64) -> Result<AfterLoad> {
    say("kill -9 of Henge and a restart");
    let restart = henge
        .kill_and_restart("SELECT count(*) FROM lineitem")
        .await?;
    let counted = single(&henge.client, "SELECT count(*) FROM lineitem").await?;
    if counted != lineitem_rows {
        return Err(
            format!("after the restart lineitem has {counted} rows, not {lineitem_rows}").into(),
        );
    }
    say(&format!(
        "  answered in {:.2} s with every row",
        restart.as_secs_f64()
    ));
    let budget = single(
        &henge.client,
        "SELECT memory_budget FROM sys.ingest WHERE \"table\" IS NULL",
    )
    .await?;
    say("CHECKPOINT in Henge");
    let checkpoint = henge.checkpoint().await?;
    let segment_bytes = henge.segment_bytes();
    let published = "FROM sys.segments WHERE \"table\" = 'lineitem' AND state = 'published'";
    let segments = single(&henge.client, &format!("SELECT count(*) {published}")).await?;
    let intervals = single(
        &henge.client,
        &format!("SELECT count(DISTINCT start) {published}"),
    )
    .await?;
    say(&format!(
        "  {segments} published segments over {intervals} intervals"
    ));
    Ok(AfterLoad {
        restart,
        budget,
        checkpoint,
        segment_bytes,
        segments,
        intervals,
    })
}

/// `SELECT * FROM lineitem` read to its end by three clients, the server's memory sampled.
async fn stream_reads(henge: &Henge, lineitem_rows: u64) -> Result<Vec<lifecycle::Stream>> {
    say("SELECT * FROM lineitem read to its end");
    let streams = lifecycle::stream_reads(henge, "lineitem", lineitem_rows).await?;
    for s in &streams {
        say(&format!(
            "  {}: {} rows in {:.1} s, server RSS {:.0} MiB before, {:.0} MiB at most",
            s.how,
            s.rows,
            s.elapsed.as_secs_f64(),
            s.rss_before as f64 / 1048576.0,
            s.peak_rss as f64 / 1048576.0
        ));
    }
    Ok(streams)
}

/// The one number `sql` answers.
async fn single(client: &henge_bench::systems::wire::Wire, sql: &str) -> Result<u64> {
    let answer = client.query(sql).await?;
    let value = answer
        .rows
        .first()
        .and_then(|row| row.first())
        .ok_or_else(|| format!("{sql}: no rows"))?;
    value
        .parse()
        .map_err(|e| format!("{sql}: {value:?} is not a count: {e}").into())
}

/// Generates lineitem once into COPY text (`lineitem.tsv`) and, if `parquet`, Parquet
/// (`lineitem.parquet`).
fn write_lineitem(scale: f64, work: &Path, parquet: bool) -> Result<u64> {
    let mut text = std::io::BufWriter::new(std::fs::File::create(work.join("lineitem.tsv"))?);
    let mut writer = match parquet {
        true => Some(data::parquet_writer(
            std::fs::File::create(work.join("lineitem.parquet"))?,
            data::lineitem_def().arrow_schema(),
        )?),
        false => None,
    };
    let mut rows = 0u64;
    let mut buffer = String::new();
    for batch in data::lineitem_batches(scale) {
        rows += batch.num_rows() as u64;
        buffer.clear();
        copy_text::encode(&batch, &mut buffer);
        text.write_all(buffer.as_bytes())?;
        if let Some(writer) = &mut writer {
            writer.write(&batch)?;
        }
    }
    if let Some(writer) = writer {
        writer.close()?;
    }
    text.flush()?;
    Ok(rows)
}

/// SQL column definitions of a table, the same for every system.
fn columns(def: &henge_storage::TableDef) -> String {
    def.columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.ty.sql_name().to_uppercase(),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every query at one thread and at all threads: a warm-up per system (whose answers are
/// compared with Henge's), then `runs` timed runs, systems interleaved and rotated.
async fn run_queries(
    systems: &mut [System],
    cores: usize,
    runs: usize,
    lineitem_rows: u64,
) -> Result<Vec<QueryRow>> {
    let mut thread_counts = vec![1];
    if cores > 1 {
        thread_counts.push(cores);
    }
    let mut rows = Vec::new();
    for threads in thread_counts {
        for system in systems.iter_mut() {
            system.set_threads(threads).await?;
        }
        for query in queries() {
            let mut differences = Vec::new();
            let mut reference = None;
            for system in systems.iter_mut() {
                let answer = system.query(query.sql).await?;
                match &reference {
                    None => reference = Some(answer.rows),
                    Some(ours) => {
                        if let Err(how) = compare(&query, ours, &answer.rows) {
                            differences.push(format!("{}: {how}", system.name()));
                        }
                    }
                }
            }
            let mut times: Vec<Vec<Duration>> = vec![Vec::new(); systems.len()];
            for run in 0..runs {
                for k in 0..systems.len() {
                    let i = (k + run) % systems.len();
                    times[i].push(systems[i].query(query.sql).await?.elapsed);
                }
            }
            let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
            say(&format!(
                "{} ({threads} thread{}): {}{}",
                query.name,
                if threads == 1 { "" } else { "s" },
                systems
                    .iter()
                    .zip(&medians)
                    .map(|(s, m)| format!(
                        "{} {:.1} ms ({:.1} M rows/s)",
                        s.name(),
                        m.as_secs_f64() * 1000.0,
                        lineitem_rows as f64 / m.as_secs_f64() / 1e6
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                differ_note(&differences)
            ));
            rows.push(QueryRow {
                name: query.name.to_owned(),
                threads,
                medians,
                differences,
            });
        }
    }
    Ok(rows)
}

/// What the progress line says of answers that differ from the reference (nothing if none).
fn differ_note(differences: &[String]) -> String {
    if differences.is_empty() {
        String::new()
    } else {
        format!("; ANSWERS DIFFER: {}", differences.join("; "))
    }
}

/// The pushdown queries on all threads: Henge with and without pushdown, DuckDB and
/// ClickHouse, each warmed up and checked against Henge without pushdown, then timed
/// interleaved.
async fn run_pushdown(
    systems: &mut [System],
    threads: usize,
    runs: usize,
) -> Result<Vec<PushdownRow>> {
    for system in systems.iter_mut() {
        system.set_threads(threads).await?;
    }
    let mut rows = Vec::new();
    for query in pushdown_queries() {
        let reference = pushdown_variant(systems, 1, query.sql).await?.rows;
        let mut differences = Vec::new();
        for (variant, label) in PUSHDOWN_VARIANTS.iter().enumerate() {
            if variant == 1 {
                continue;
            }
            let answer = pushdown_variant(systems, variant, query.sql).await?;
            if let Err(how) = compare(&query, &reference, &answer.rows) {
                differences.push(format!("{label}: {how}"));
            }
        }
        let n = PUSHDOWN_VARIANTS.len();
        let mut times: [Vec<Duration>; 4] = Default::default();
        for r in 0..runs {
            for k in 0..n {
                let variant = (k + r) % n;
                times[variant].push(pushdown_variant(systems, variant, query.sql).await?.elapsed);
            }
        }
        let medians = times.map(|mut t| median(&mut t));
        say(&format!(
            "{}: {}{}",
            query.name,
            PUSHDOWN_VARIANTS
                .iter()
                .zip(&medians)
                .map(|(label, m)| format!("{label} {:.1} ms", m.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(", "),
            differ_note(&differences)
        ));
        rows.push(PushdownRow {
            name: query.name.to_owned(),
            sql: query.sql.to_owned(),
            medians,
            differences,
        });
    }
    if let System::Henge(henge) = &mut systems[0] {
        henge.set_pushdown(true).await?;
    }
    Ok(rows)
}

/// What the pushdown comparison runs, in the order of [`PushdownRow::medians`].
const PUSHDOWN_VARIANTS: [&str; 4] = ["Henge", "Henge without pushdown", "DuckDB", "ClickHouse"];

/// Runs `sql` on a variant of [`PUSHDOWN_VARIANTS`].
async fn pushdown_variant(
    systems: &mut [System],
    variant: usize,
    sql: &str,
) -> Result<henge_bench::systems::Answer> {
    if variant >= 2 {
        let name = PUSHDOWN_VARIANTS[variant];
        let peer = systems
            .iter_mut()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("{name} is not running"))?;
        return peer.query(sql).await;
    }
    if let System::Henge(henge) = &mut systems[0] {
        henge.set_pushdown(variant == 0).await?;
    }
    systems[0].query(sql).await
}

/// The PostgreSQL among `systems`.
fn postgres_of(systems: &[System]) -> &Postgres {
    systems
        .iter()
        .find_map(|s| match s {
            System::Postgres(p) => Some(p),
            _ => None,
        })
        .expect("PostgreSQL runs beside Henge")
}

/// Single-row INSERTs into a new Henge table, each checked for by `reader`.
async fn insert_run(
    label: &str,
    writer: &henge_bench::systems::wire::Wire,
    reader: &henge_bench::systems::wire::Wire,
    count: usize,
) -> Result<Inserts> {
    let with = " WITH (time_column = 'ts', segment_granularity = 'hour')";
    writer.execute(&latency::inserts_table(with)).await?;
    latency::inserts(label, writer, reader, count).await
}

/// pgbench -M prepared against Henge and PostgreSQL: pgbench's select-only query, and a
/// filter over the event stream.
async fn run_pgbench(
    systems: &[System],
    pg_bin: &Path,
    work: &Path,
    clients: usize,
    seconds: u64,
) -> Result<Vec<henge_bench::report::PgbenchRow>> {
    let System::Henge(henge) = &systems[0] else {
        unreachable!("Henge is first")
    };
    let postgres = postgres_of(systems);
    let accounts = work.join("pgbench_accounts.tsv");
    std::fs::write(&accounts, latency::pgbench_accounts(1))?;
    let table =
        "pgbench_accounts (aid INTEGER NOT NULL, bid INTEGER, abalance INTEGER, filler TEXT)";
    henge
        .client
        .execute(&format!("CREATE TABLE {table}"))
        .await?;
    henge.client.copy_in("pgbench_accounts", &accounts).await?;
    postgres
        .client
        .execute(&format!("CREATE TABLE {table}"))
        .await?;
    postgres
        .client
        .copy_in("pgbench_accounts", &accounts)
        .await?;
    postgres
        .client
        .execute("ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)")
        .await?;
    postgres
        .client
        .execute("VACUUM ANALYZE pgbench_accounts")
        .await?;
    let scripts = [
        ("select-1", "SELECT 1;\n"),
        (
            "select-only",
            "\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n",
        ),
        (
            "events-filter",
            "\\set a random(0, 1999)\nSELECT count(*), sum(delta) FROM events WHERE added = :a;\n",
        ),
        (
            "events-dimension",
            "\\set u random(0, 19999)\nSELECT count(*), sum(delta) FROM events WHERE user_name = 'user-' || :u;\n",
        ),
    ];
    let mut results = Vec::new();
    for (name, script) in scripts {
        let file = work.join(format!("{name}.sql"));
        std::fs::write(&file, script)?;
        for (system, port, user) in [
            ("Henge", henge.port(), "henge"),
            ("PostgreSQL", postgres.port(), "postgres"),
        ] {
            say(&format!("pgbench {name} against {system}"));
            let run = latency::pgbench(pg_bin, port, user, &file, clients, seconds)?;
            say(&format!("  {:.0} transactions/s", run.tps));
            results.push((name.to_owned(), system.to_owned(), run));
        }
    }
    Ok(results)
}

/// CPU model, cores, memory and kernel, read from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {:.0} GiB RAM, Linux {}",
        memory_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
