//! The harness's output: markdown tables, a PNG bar chart (plotters), and the section of
//! `benches/RESULTS.md` that holds them.

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::latency::{Inserts, Pgbench};
use crate::Result;

/// The medians of one query at one thread count.
pub struct QueryRow {
    pub name: String,
    pub threads: usize,
    /// (system, median) in the order of [`Report::systems`].
    pub medians: Vec<Duration>,
    /// Systems whose answer differed from Henge's, with how.
    pub differences: Vec<String>,
}

/// One query of the pushdown comparison, all threads.
pub struct PushdownRow {
    pub name: String,
    pub sql: String,
    /// Henge with pushdown, Henge without, DuckDB, ClickHouse.
    pub medians: [Duration; 4],
    pub differences: Vec<String>,
}

/// A load of one table into one system.
pub struct LoadRow {
    pub table: String,
    pub system: String,
    pub rows: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
}

/// pgbench results: (script, system, run).
pub type PgbenchRow = (String, String, Pgbench);

/// Everything one harness run measured.
pub struct Report {
    pub scale: f64,
    pub lineitem_rows: u64,
    pub runs: usize,
    pub machine: String,
    pub date: String,
    pub command: String,
    /// System names with their versions; Henge first.
    pub systems: Vec<(String, String)>,
    pub queries: Vec<QueryRow>,
    pub pushdown: Vec<PushdownRow>,
    pub threads: usize,
    pub loads: Vec<LoadRow>,
    pub checkpoint: Duration,
    pub segment_bytes: u64,
    pub lifecycle: Lifecycle,
    pub inserts: Vec<Inserts>,
    pub pgbench: Vec<PgbenchRow>,
    pub pgbench_clients: usize,
    pub pgbench_seconds: u64,
}

/// Henge's lineitem load seen from outside: memory, restart, the segments it ends with.
pub struct Lifecycle {
    /// Peak resident memory of the server during the COPY, and its ingest memory budget.
    pub load_peak_rss: u64,
    pub budget: u64,
    /// Time from starting the server after kill -9 (right after the COPY) until it answered
    /// `count(*)` with every row.
    pub restart: Duration,
    /// Published lineitem segments after CHECKPOINT, and the month intervals they cover.
    pub segments: u64,
    pub intervals: u64,
    /// The soak, with the file name of its chart, if one ran.
    pub soak: Option<(crate::lifecycle::Soak, String)>,
    /// `SELECT *` of lineitem read to its end by clients, with the server's memory.
    pub streams: Vec<crate::lifecycle::Stream>,
}

impl Lifecycle {
    /// The "Henge's lifecycle" part of the results; `chart` is the main chart's link, the
    /// soak's chart sits beside it.
    pub fn markdown(&self, chart: &str) -> String {
        let mut md = String::new();
        push(
            &mut md,
            "#### Henge's lifecycle at this scale
",
        );
        push(
            &mut md,
            &format!(
                "- Peak resident memory of the server during the one COPY of lineitem: {} \
             (ingest memory budget {}; the target is below the budget + 1 GiB).\n\
             - Restart after kill -9 right after that COPY, until `count(*)` answered with \
             every row: {:.2} s.\n\
             - After CHECKPOINT: {} published lineitem segments over {} month intervals.",
                mib(self.load_peak_rss),
                mib(self.budget),
                self.restart.as_secs_f64(),
                self.segments,
                self.intervals
            ),
        );
        if let Some((soak, soak_file)) = &self.soak {
            // Beside the main chart.
            let soak_chart = match chart.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{soak_file}"),
                None => soak_file.clone(),
            };
            let (first, second) = soak.rss_halves();
            push(
                &mut md,
                &format!(
                    "\n**Soak**: COPY of the event stream (minute segments, 10 s window period, \
                 timestamps of the wall clock) at {} rows/s asked for {} s; {} rows loaded \
                 ({:.0} rows/s), with {} queries beside it (p50 {} ms, p99 {} ms), every \
                 count(*) between the rows acknowledged before and after it. Peak resident \
                 memory {} in the first half, {} in the second (anonymous, i.e. not mapped \
                 segment files: {} and {}); WAL at most {}. Segments at the end: {}.\n\n\
                 ![soak]({soak_chart})\n",
                    soak.target_rate,
                    soak.seconds,
                    soak.rows,
                    soak.achieved_rate(),
                    soak.queries,
                    ms(soak.query_p50),
                    ms(soak.query_p99),
                    mib(first.0),
                    mib(second.0),
                    mib(first.1),
                    mib(second.1),
                    mib(soak.peak_wal()),
                    soak.segments
                        .iter()
                        .map(|(state, n)| format!("{n} {state}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if !self.streams.is_empty() {
            push(
                &mut md,
                "\n**`SELECT * FROM lineitem` read to its end** by a client that drops the rows \
                 as they arrive, the server's resident memory sampled every 100 ms:\n\n\
                 | client | rows | seconds | rows/s | server RSS before | server peak RSS | \
                 of which anonymous |\n\
                 |---|---|---|---|---|---|---|",
            );
            for s in &self.streams {
                push(
                    &mut md,
                    &format!(
                        "| {} | {} | {:.1} | {} | {} | {} | {} |",
                        s.how,
                        s.rows,
                        s.elapsed.as_secs_f64(),
                        rate(s.rows as f64 / s.elapsed.as_secs_f64().max(1e-9)),
                        mib(s.rss_before),
                        mib(s.peak_rss),
                        mib(s.peak_anon)
                    ),
                );
            }
        }
        md
    }
}

/// Appends `line` and a newline.
fn push(md: &mut String, line: &str) {
    md.push_str(line);
    md.push('\n');
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// A speed ratio, in bold where Henge is slower (below 1).
fn versus(ratio: f64) -> String {
    match ratio < 1.0 {
        true => format!("**{ratio:.2}**"),
        false => format!("{ratio:.2}"),
    }
}

fn rate(per_second: f64) -> String {
    if per_second >= 1e9 {
        format!("{:.2} G", per_second / 1e9)
    } else if per_second >= 1e6 {
        format!("{:.1} M", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.0} K", per_second / 1e3)
    } else {
        format!("{per_second:.0}")
    }
}

impl Report {
    fn thread_counts(&self) -> Vec<usize> {
        let mut threads: Vec<usize> = self.queries.iter().map(|q| q.threads).collect();
        threads.dedup();
        threads
    }

    /// The markdown section: what ran, where, and every figure.
    pub fn markdown(&self, chart: &str) -> String {
        let mut md = String::new();
        push(
            &mut md,
            &format!(
                "### TPC-H lineitem, scale factor {} ({} rows), measured {}\n",
                self.scale, self.lineitem_rows, self.date
            ),
        );
        push(&mut md, &format!("Command: `{}`\n", self.command));
        push(&mut md, &format!("Machine: {}\n", self.machine));
        let versions: Vec<String> = self.systems.iter().map(|(_, v)| v.clone()).collect();
        push(&mut md, &format!("Systems: {}.\n", versions.join(", ")));
        push(
            &mut md,
            &format!(
                "Each query: one warm-up run per system, then {} runs interleaved across the \
                 systems; the median wall time is shown, in milliseconds, with the rows of \
                 lineitem it covers per second per thread. \"Henge ÷ X\" is Henge's speed over \
                 X's (above 1: Henge is faster; below 1 in bold). Henge and PostgreSQL are \
                 timed by a client over the wire (simple protocol, text results), DuckDB and \
                 ClickHouse (chDB, a MergeTree table ordered by the time column) inside their \
                 Python process, DataFusion in the harness's process over one Parquet file \
                 (zstd).\n",
                self.runs
            ),
        );
        push(&mut md, &format!("![query times]({chart})\n"));
        let names: Vec<&str> = self.systems.iter().map(|(n, _)| n.as_str()).collect();
        for threads in self.thread_counts() {
            push(
                &mut md,
                &format!(
                    "#### {threads} thread{}\n",
                    if threads == 1 { "" } else { "s" }
                ),
            );
            let mut header = "| query |".to_owned();
            let mut rule = "|---|".to_owned();
            for name in &names {
                header.push_str(&format!(" {name} ms (rows/s/thread) |"));
                rule.push_str("---|");
            }
            for name in &names[1..] {
                header.push_str(&format!(" Henge ÷ {name} |"));
                rule.push_str("---|");
            }
            header.push_str(" Henge ÷ best peer |");
            rule.push_str("---|");
            header.push_str(" answers |");
            rule.push_str("---|");
            push(&mut md, &header);
            push(&mut md, &rule);
            for q in self.queries.iter().filter(|q| q.threads == threads) {
                let mut line = format!("| {} |", q.name);
                for median in &q.medians {
                    let per_thread =
                        self.lineitem_rows as f64 / median.as_secs_f64() / threads as f64;
                    line.push_str(&format!(" {} ({}) |", ms(*median), rate(per_thread)));
                }
                for median in &q.medians[1..] {
                    let ratio = median.as_secs_f64() / q.medians[0].as_secs_f64();
                    line.push_str(&format!(" {ratio:.2} |"));
                }
                let best = q.medians[1..].iter().min().copied().unwrap_or_default();
                line.push_str(&format!(
                    " {} |",
                    versus(best.as_secs_f64() / q.medians[0].as_secs_f64())
                ));
                line.push_str(if q.differences.is_empty() {
                    " equal |"
                } else {
                    " **differ** |"
                });
                push(&mut md, &line);
            }
            md.push('\n');
            for q in self.queries.iter().filter(|q| q.threads == threads) {
                for d in &q.differences {
                    push(&mut md, &format!("- {}: {d}", q.name));
                }
            }
        }

        push(&mut md, "#### Pushdown\n");
        push(
            &mut md,
            &format!(
                "Filtered counts and group-bys on {} threads: Henge as it runs by default, \
                 Henge with `SET henge.pushdown = false` (every segment read, the filter \
                 evaluated on every row, the rows aggregated by DataFusion), DuckDB and \
                 ClickHouse. Medians of {} runs in milliseconds.\n",
                self.threads, self.runs
            ),
        );
        push(
            &mut md,
            "| query | Henge ms | Henge without pushdown ms | pushdown speed-up | DuckDB ms | ClickHouse ms | Henge ÷ best peer | answers |",
        );
        push(&mut md, "|---|---|---|---|---|---|---|---|");
        for p in &self.pushdown {
            let [on, off, duckdb, clickhouse] = p.medians;
            push(
                &mut md,
                &format!(
                    "| {} | {} | {} | {:.2} | {} | {} | {} | {} |",
                    p.name,
                    ms(on),
                    ms(off),
                    off.as_secs_f64() / on.as_secs_f64(),
                    ms(duckdb),
                    ms(clickhouse),
                    versus(duckdb.min(clickhouse).as_secs_f64() / on.as_secs_f64()),
                    if p.differences.is_empty() {
                        "equal"
                    } else {
                        "**differ**"
                    }
                ),
            );
        }
        md.push('\n');
        for p in &self.pushdown {
            push(&mut md, &format!("- {}: `{}`", p.name, p.sql));
            for d in &p.differences {
                push(&mut md, &format!("  - differs: {d}"));
            }
        }
        md.push('\n');

        push(&mut md, "#### Ingest (COPY)\n");
        push(
            &mut md,
            "One COPY of the whole table per system: Henge and PostgreSQL from a client over \
             the wire (COPY FROM STDIN, text format), DuckDB and ClickHouse from the same \
             text in a file (DuckDB's COPY FROM with its csv reader; ClickHouse's INSERT … \
             SELECT FROM file(…, TabSeparated) into its MergeTree table). Rows per \
             CPU-second counts the CPU time the system itself spent (every PostgreSQL \
             process; the DuckDB or chDB Python process; the henge process), read from \
             /proc. Henge's figure is until the rows are durable in the \
             write-ahead log and queryable; the segments are built by the CHECKPOINT after \
             it.\n",
        );
        push(
            &mut md,
            "| table | system | rows | seconds | rows/s | rows per CPU-second |",
        );
        push(&mut md, "|---|---|---|---|---|---|");
        for l in &self.loads {
            push(
                &mut md,
                &format!(
                    "| {} | {} | {} | {:.2} | {} | {} |",
                    l.table,
                    l.system,
                    l.rows,
                    l.elapsed.as_secs_f64(),
                    rate(l.rows as f64 / l.elapsed.as_secs_f64()),
                    rate(l.rows as f64 / l.cpu.as_secs_f64().max(1e-9)),
                ),
            );
        }
        push(
            &mut md,
            &format!(
                "\nHenge's CHECKPOINT of lineitem afterwards (segments built, uploaded to deep \
                 storage on local disk, published): {:.2} s; {:.1} MB of segments.\n",
                self.checkpoint.as_secs_f64(),
                self.segment_bytes as f64 / 1e6
            ),
        );
        md.push_str(&self.lifecycle.markdown(chart));
        push(&mut md, "");

        push(&mut md, "#### INSERT round trip\n");
        push(
            &mut md,
            "Single-row INSERTs, one at a time, from one client over loopback. After each \
             acknowledgement a second connection counts the row: \"visible\" is how many it \
             found at once.\n",
        );
        push(
            &mut md,
            "| configuration | INSERTs | p50 ms | p99 ms | visible at once |",
        );
        push(&mut md, "|---|---|---|---|---|");
        for i in &self.inserts {
            push(
                &mut md,
                &format!(
                    "| {} | {} | {} | {} | {} of {} |",
                    i.label,
                    i.count,
                    ms(i.p50),
                    ms(i.p99),
                    i.visible,
                    i.count
                ),
            );
        }

        push(&mut md, "\n#### Small queries (pgbench -M prepared)\n");
        push(
            &mut md,
            &format!(
                "`pgbench -n -M prepared -c {c} -j {c} -T {s}` with a custom script. \
                 select-1 is `SELECT 1` (what the server spends on a statement itself); \
                 select-only is pgbench's own `-S` query on `pgbench_accounts` (100,000 rows; \
                 PostgreSQL has the primary key pgbench would create, Henge has no index on \
                 `aid`); events-filter counts and sums the events stream where \
                 `added = :a` (no index in either); events-dimension where `user_name` (20,000 values) \
                 is one of them (Henge has its bitmap index, PostgreSQL no index).\n",
                c = self.pgbench_clients,
                s = self.pgbench_seconds
            ),
        );
        push(
            &mut md,
            "| script | system | transactions/s | latency avg ms |",
        );
        push(&mut md, "|---|---|---|---|");
        for (script, system, run) in &self.pgbench {
            push(
                &mut md,
                &format!(
                    "| {script} | {system} | {:.0} | {:.2} |",
                    run.tps, run.latency_ms
                ),
            );
        }
        md
    }

    /// A bar chart of the query medians, one panel per thread count, log scale.
    pub fn chart(&self, path: &Path) -> Result<()> {
        register_font()?;
        let threads = self.thread_counts();
        let root = BitMapBackend::new(path, (1400, 520 * threads.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| format!("chart: {e}"))?;
        let panels = root.split_evenly((threads.len(), 1));
        let colors = [
            RGBColor(214, 96, 39),
            RGBColor(234, 191, 52),
            RGBColor(200, 40, 60),
            RGBColor(70, 130, 180),
            RGBColor(96, 96, 96),
        ];
        let all: Vec<f64> = self
            .queries
            .iter()
            .flat_map(|q| q.medians.iter().map(|m| m.as_secs_f64() * 1000.0))
            .collect();
        let low = all.iter().cloned().fold(f64::MAX, f64::min).max(0.01) / 2.0;
        let high = all.iter().cloned().fold(0.0, f64::max) * 2.0;
        for (panel, &t) in panels.iter().zip(&threads) {
            let rows: Vec<&QueryRow> = self.queries.iter().filter(|q| q.threads == t).collect();
            let names: Vec<String> = rows.iter().map(|q| q.name.clone()).collect();
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!(
                        "TPC-H lineitem SF {} — median query time, {t} thread{} (lower is better)",
                        self.scale,
                        if t == 1 { "" } else { "s" }
                    ),
                    ("sans-serif", 22),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(Slots(rows.len()), (low..high).log_scale())
                .map_err(|e| format!("chart: {e}"))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_label_formatter(&|x| names.get(*x as usize).cloned().unwrap_or_default())
                .x_label_style(("sans-serif", 13))
                .y_desc("milliseconds")
                .draw()
                .map_err(|e| format!("chart: {e}"))?;
            let width = 0.8 / self.systems.len() as f64;
            for (s, (name, _)) in self.systems.iter().enumerate() {
                let color = colors[s % colors.len()];
                chart
                    .draw_series(rows.iter().enumerate().map(|(i, q)| {
                        let x0 = i as f64 + 0.1 + s as f64 * width;
                        let y = q.medians[s].as_secs_f64() * 1000.0;
                        Rectangle::new([(x0, low), (x0 + width * 0.9, y)], color.filled())
                    }))
                    .map_err(|e| format!("chart: {e}"))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled())
                    });
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        root.present().map_err(|e| format!("chart: {e}"))?;
        Ok(())
    }
}

/// The series' labels in a box at `position`.
pub(crate) fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("chart: {e}"))?;
    Ok(())
}

/// An x axis of `n` equal slots, one per query, labelled at their centres.
struct Slots(usize);

impl plotters::coord::ranged1d::Ranged for Slots {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let width = f64::from(limit.1 - limit.0);
        limit.0 + (value / self.0.max(1) as f64 * width).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0 as f64
    }
}

/// plotters draws text with a font it is given: DejaVu Sans from the system.
pub(crate) fn register_font() -> Result<()> {
    let candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let bytes = candidates
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no DejaVu Sans font found (Debian: apt install fonts-dejavu-core)")?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "DejaVu Sans could not be read as a font")?;
    Ok(())
}

/// Replaces the part of `results` (RESULTS.md) between the markers named `key` (`sf=10`,
/// `sf=10 lifecycle`) with `section`, or appends it with markers.
pub fn update_results(results: &Path, key: &str, section: &str) -> Result<()> {
    let begin = format!("<!-- henge-bench {key} begin -->");
    let end = format!("<!-- henge-bench {key} end -->");
    let text = std::fs::read_to_string(results).unwrap_or_default();
    let block = format!("{begin}\n{section}{end}");
    let updated = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n{block}\n", text.trim_end()),
    };
    std::fs::write(results, updated).map_err(|e| format!("writing {}: {e}", results.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_section_is_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RESULTS.md");
        std::fs::write(&path, "# Results\n\nintro\n").unwrap();
        update_results(&path, "sf=1", "first\n").unwrap();
        update_results(&path, "sf=10", "other\n").unwrap();
        update_results(&path, "sf=1", "second\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Results\n\nintro\n"));
        assert!(text.contains("sf=1 begin -->\nsecond\n<!--"));
        assert!(text.contains("other"));
        assert!(!text.contains("first"));
    }
}
