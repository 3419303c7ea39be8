//! Differential test of the scan's pushdown: random data spread over many segments and the
//! real-time buffer, 3,000 random queries (`HENGE_DIFFERENTIAL_QUERIES` to change that) with
//! filters, group-bys over strings, integers and time buckets, every kind of aggregate,
//! joins and subqueries, answered by Henge and by plain DataFusion over the same rows in a
//! `MemTable`; the answers must be identical.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SessionConfig, SessionContext};
use henge_ingest::{Engine, EngineOptions};
use henge_planner::literal::PgLiteralInput;
use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef};

/// xorshift64*: deterministic, so a failure names a reproducible query.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const COUNTRIES: &[&str] = &["DE", "FR", "US", "de", "Ürün", "ß", "", "a'b", "GB", "JP"];
const HOUR: i64 = 3_600_000_000;
const START: i64 = 1_717_200_000_000_000; // 2024-06-01 00:00:00

fn def() -> TableDef {
    let column = |name: &str, ty, nullable| ColumnDef {
        name: name.into(),
        ty,
        nullable,
        rollup: None,
        default: None,
    };
    TableDef {
        id: 0,
        name: "t".into(),
        columns: vec![
            column("ts", ColumnType::Timestamp, false),
            column("country", ColumnType::Text, true),
            column("page", ColumnType::Text, true),
            column("token", ColumnType::Text, true),
            column("n", ColumnType::BigInt, true),
            column("x", ColumnType::Double, true),
            column("k", ColumnType::BigInt, false),
        ],
        time_column: Some("ts".into()),
        segment_granularity: Granularity::Hour,
        window_period_secs: henge_storage::schema::DEFAULT_WINDOW_PERIOD_SECS,
        rollup: false,
        query_granularity: None,
        limits: Default::default(),
    }
}

/// `rows` rows in hours `first..first + hours`, skewed and with NULLs.
fn batch(
    random: &mut Random,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    rows: usize,
    first: i64,
    hours: i64,
    minutes: bool,
) -> RecordBatch {
    let mut ts = Vec::new();
    let (mut country, mut page, mut token, mut n, mut x, mut k) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..rows {
        let at = START
            + (first + random.below(hours as u64) as i64) * HOUR
            + random.below(HOUR as u64) as i64;
        // Whole minutes where `minutes`: many rows share a time, as events often do.
        ts.push(if minutes { at - at % 60_000_000 } else { at });
        // Skewed: the first countries are far more common.
        let c = random.below(COUNTRIES.len() as u64) * random.below(COUNTRIES.len() as u64)
            / COUNTRIES.len() as u64;
        country.push((!random.chance(8)).then(|| COUNTRIES[c as usize].to_owned()));
        page.push((!random.chance(5)).then(|| format!("/p/{}", random.below(120))));
        token.push((!random.chance(3)).then(|| format!("tok-{}", random.next() % 1_000_000)));
        n.push((!random.chance(10)).then(|| random.below(2000) as i64 - 500));
        x.push((!random.chance(10)).then(|| random.below(10_000) as f64 / 8.0));
        // Never NULL, 5 to 64: where text order and number order disagree.
        k.push(5 + random.below(60) as i64);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(StringArray::from(country)),
        Arc::new(StringArray::from(page)),
        Arc::new(StringArray::from(token)),
        Arc::new(Int64Array::from(n)),
        Arc::new(Float64Array::from(x)),
        Arc::new(Int64Array::from(k)),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn timestamp(random: &mut Random) -> String {
    let at = START + random.below(7 * HOUR as u64) as i64 - HOUR / 2;
    let at = datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(at).unwrap();
    format!("'{}'", at.format("%Y-%m-%d %H:%M:%S"))
}

/// One random predicate over `t` (qualified by `alias`).
fn predicate(random: &mut Random, alias: &str, depth: u32) -> String {
    if depth > 0 && random.chance(45) {
        let a = predicate(random, alias, depth - 1);
        let b = predicate(random, alias, depth - 1);
        return match random.below(3) {
            0 => format!("({a} AND {b})"),
            1 => format!("({a} OR {b})"),
            _ => format!("NOT ({a})"),
        };
    }
    let text = random.pick(&["country", "country", "page", "token"]);
    let col = |c: &str| format!("{alias}{c}");
    let value = |random: &mut Random, c: &str| match c {
        "country" => quote(random.pick(COUNTRIES)),
        "page" => quote(&format!("/p/{}", random.below(130))),
        _ => quote(&format!("tok-{}", random.next() % 1_000_000)),
    };
    match random.below(22) {
        0 => format!("{} = {}", col(text), value(random, text)),
        1 => format!("{} <> {}", col(text), value(random, text)),
        2 => format!(
            "{} IN ({}, {}, {})",
            col(text),
            value(random, text),
            value(random, text),
            value(random, text)
        ),
        3 => format!(
            "{} NOT IN ({}, {})",
            col(text),
            value(random, text),
            value(random, text)
        ),
        4 => format!("{} IS NULL", col(text)),
        5 => format!("{} IS NOT NULL", col(text)),
        6 => format!(
            "{} LIKE {}",
            col(text),
            quote(random.pick(&["D%", "%R%", "/p/1%", "_", "%", "tok-9%"]))
        ),
        7 => format!(
            "{} ILIKE {}",
            col(text),
            quote(random.pick(&["d%", "%ü%", "/P/2_", "%S%"]))
        ),
        8 => format!(
            "{} ~ {}",
            col(text),
            quote(random.pick(&["^[A-Z]+$", "1$", "^/p/[0-4]", "ß|Ü"]))
        ),
        9 => format!(
            "{} {} {}",
            col(text),
            random.pick(&["<", "<=", ">", ">="]),
            value(random, text)
        ),
        // A function of the column (not one Henge gives PostgreSQL's C-locale meaning, as
        // `upper`, which the plain context would answer with Unicode's).
        10 => format!(
            "reverse({}) = {}",
            col(text),
            quote(random.pick(&["ED", "nürÜ", "ß", ""]))
        ),
        11 => format!("length({}) > {}", col(text), random.below(6)),
        12 => format!(
            "{} {} {}",
            col("n"),
            random.pick(&["<", "<=", ">", ">=", "=", "<>"]),
            random.below(2000) as i64 - 500
        ),
        13 => format!("{} IS {}NULL", col("n"), random.pick(&["", "NOT "])),
        14 => format!(
            "{} BETWEEN {} AND {}",
            col("n"),
            random.below(1000) as i64 - 500,
            random.below(1500)
        ),
        15 => format!(
            "{} {} {}",
            col("x"),
            random.pick(&["<", ">="]),
            random.below(1300)
        ),
        16 => format!(
            "{} {} {}",
            col("ts"),
            random.pick(&["<", "<=", ">", ">="]),
            timestamp(random)
        ),
        17 => format!(
            "{} BETWEEN {} AND {}",
            col("ts"),
            timestamp(random),
            timestamp(random)
        ),
        // Casts that do not keep order: the footer's bounds must not decide these.
        18 => format!("CAST({} AS TEXT) >= '{}'", col("k"), random.below(9)),
        19 => format!("CAST({} AS DATE) = '2024-06-01'", col("ts")),
        20 => format!(
            "{} {} {}",
            col("k"),
            random.pick(&["<", ">=", "="]),
            random.below(70)
        ),
        _ => format!(
            "({} = {} OR {} > 100)",
            col("country"),
            value(random, "country"),
            col("n")
        ),
    }
}

fn query(random: &mut Random) -> String {
    let p = predicate(random, "", 3);
    match random.below(13) {
        0 => format!(
            "SELECT count(*), sum(n), count(page), min(country), max(ts), min(x) FROM t WHERE {p}"
        ),
        1 => format!("SELECT country, count(*), sum(n), max(x) FROM t WHERE {p} GROUP BY country"),
        2 => format!("SELECT ts, country, page, n FROM t WHERE {p}"),
        3 => format!(
            "SELECT a.country, count(*) FROM t a JOIN t b ON a.page = b.page \
             WHERE {} AND b.n > {} GROUP BY a.country",
            predicate(random, "a.", 2),
            random.below(1400)
        ),
        4 => format!("SELECT count(*), sum(n) FROM t WHERE page IN (SELECT page FROM t WHERE {p})"),
        5 => format!("SELECT date_trunc('hour', ts), count(*), sum(n) FROM t WHERE {p} GROUP BY 1"),
        7 => {
            let keys = [
                "country",
                "page",
                "country, page",
                "country, k",
                "n",
                "k, page",
            ][random.below(6) as usize];
            format!(
                "SELECT {keys}, {} FROM t WHERE {p} GROUP BY {keys}",
                aggregates(random)
            )
        }
        8 => {
            let bucket = [
                "date_trunc('minute', ts)",
                "date_bin(INTERVAL '15 minutes', ts, TIMESTAMP '2024-06-01 00:00:00')",
                "floor(extract(epoch from ts) / 600) * 600",
                "date_trunc('hour', ts)",
            ][random.below(4) as usize];
            let key = ["", ", country", ", page"][random.below(3) as usize];
            format!(
                "SELECT {bucket} AS time{key}, {} FROM t WHERE {p} GROUP BY 1{key}",
                aggregates(random)
            )
        }
        9 => format!("SELECT {} FROM t WHERE {p}", aggregates(random)),
        11 => format!(
            "SELECT c, h, count(*), sum(m), max(p) FROM \
             (SELECT country AS c, date_trunc('hour', ts) AS h, n * 2 AS m, page AS p \
              FROM t WHERE {p}) AS s GROUP BY c, h"
        ),
        12 => format!(
            "SELECT r, count(*) FROM (SELECT CAST(random() * 3 AS BIGINT) * 0 AS r FROM t \
             WHERE {p}) AS s GROUP BY r"
        ),
        10 => {
            let key = ["country", "page", "token"][random.below(3) as usize];
            format!("SELECT {key}, count(*), count(1) FROM t WHERE {p} GROUP BY {key}")
        }
        _ => format!(
            "SELECT count(*) FROM (SELECT n FROM t WHERE {p} LIMIT {}) AS s",
            random.below(3000)
        ),
    }
}

/// One to three aggregates of every kind the scan may compute itself.
fn aggregates(random: &mut Random) -> String {
    let all = [
        "count(*)",
        "count(page)",
        "count(DISTINCT page)",
        "count(DISTINCT country)",
        "sum(n)",
        "avg(n)",
        "avg(x)",
        "min(x)",
        "max(n)",
        "min(country)",
        "max(page)",
        "max(ts)",
        "sum(k) FILTER (WHERE n > 100)",
        "count(*) FILTER (WHERE country = 'de')",
        "array_agg(DISTINCT country ORDER BY country)",
    ];
    let count = 1 + random.below(3);
    (0..count)
        .map(|_| all[random.below(all.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number as its value, anything else as it is. The reference here is DataFusion, whose
/// `extract`, `avg` and variances are doubles where Henge's are numerics (`1717200000` and
/// `1717200000.0` are one answer); Henge's exact digits are checked against PostgreSQL
/// itself (`sql-tests/clients/postgres_compare.sh`).
fn number_or_text(cell: String) -> String {
    match cell.parse::<f64>() {
        Ok(v) if cell.contains(['.', 'e']) && v.is_finite() => v.to_string(),
        _ => cell,
    }
}

/// Every row of the answer as text, sorted.
async fn answer(context: &SessionContext, sql: &str) -> Result<Vec<String>, String> {
    let batches = context
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| number_or_text(f.value(row).to_string()))
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows.sort();
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushdown_answers_equal_plain_datafusion() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open(
            dir.path(),
            &EngineOptions {
                wal_fsync: false,
                ..EngineOptions::default()
            },
        )
        .unwrap(),
    );
    let table = engine.create_table(def()).unwrap();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut all = Vec::new();
    // Three checkpoints over overlapping hours (several partitions per hour), then rows
    // left in the buffer, some in published hours and some in a new one.
    for (rows, first, hours, checkpoint, minutes) in [
        (2500, 0, 3, true, false),
        (2000, 2, 3, true, true),
        (1500, 1, 4, true, true),
        (800, 3, 4, false, false),
    ] {
        let b = batch(&mut random, &table.schema, rows, first, hours, minutes);
        engine.append(&table, vec![b.clone()]).await.unwrap();
        all.push(b);
        if checkpoint {
            engine.checkpoint().await.unwrap();
        }
    }
    let henge = henge_planner::new_context(
        engine.clone(),
        3,
        Default::default(),
        Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        Default::default(),
    );
    let config = SessionConfig::new()
        .with_target_partitions(3)
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
    let plain = SessionContext::new_with_config(config);
    plain.add_analyzer_rule(Arc::new(PgLiteralInput));
    plain
        .register_table(
            "t",
            Arc::new(MemTable::try_new(table.schema.clone(), vec![all]).unwrap()),
        )
        .unwrap();

    let queries = std::env::var("HENGE_DIFFERENTIAL_QUERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let mut answered = 0;
    for i in 0..queries {
        let sql = query(&mut random);
        let expected = answer(&plain, &sql).await;
        let got = answer(&henge, &sql).await;
        match (&expected, &got) {
            (Ok(e), Ok(g)) => {
                assert_eq!(g, e, "query {i} differs: {sql}");
                answered += 1;
            }
            // Both refuse (say, a regex DataFusion does not take): fine, as long as both do.
            (Err(_), Err(_)) => {}
            _ => panic!("query {i}: plain {expected:?}, henge {got:?}: {sql}"),
        }
    }
    assert!(
        answered > queries * 9 / 10,
        "only {answered} of {queries} ran"
    );
}
