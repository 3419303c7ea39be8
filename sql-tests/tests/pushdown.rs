//! EXPLAIN shows what the scan does with a query's filters: segments pruned by time and by
//! statistics, and the predicates answered by bitmap indexes. (The answers themselves are
//! checked in pushdown.slt.)

use henge_sql_tests::server::TestServer;
use henge_sql_tests::values::text_rows;
use tokio_postgres::Client;

/// The plan text of `EXPLAIN sql`, all rows joined.
async fn explain(client: &Client, sql: &str) -> String {
    text_rows(client, &format!("EXPLAIN {sql}"))
        .await
        .expect("explain")
        .into_iter()
        .map(|row| row.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The answers of `queries` as Henge runs them by default, each checked against its
/// answer with `henge.pushdown` off (left off afterwards).
async fn same_without_pushdown<S: AsRef<str>>(
    client: &Client,
    queries: &[S],
) -> Vec<Vec<Vec<Option<String>>>> {
    let mut pushed = Vec::new();
    for sql in queries {
        pushed.push(text_rows(client, sql.as_ref()).await.unwrap());
    }
    client
        .batch_execute("SET henge.pushdown = false")
        .await
        .unwrap();
    for (sql, pushed) in queries.iter().zip(&pushed) {
        let sql = sql.as_ref();
        assert_eq!(&text_rows(client, sql).await.unwrap(), pushed, "{sql}");
    }
    // Pushed down again for what the caller asks next (the queries of a second call were
    // once compared without pushdown on both sides).
    client
        .batch_execute("SET henge.pushdown = true")
        .await
        .unwrap();
    pushed
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test]
async fn explain_shows_pruning_and_bitmap_filters() {
    let server = TestServer::start();
    let client = server.connect().await;
    // A name repeated in the select list is told apart inside the plan; the text sent
    // holds no NUL (psql's output stopped at one).
    let plan = explain(
        &client,
        "ANALYZE SELECT sum(x), sum(x) FROM (VALUES (1)) AS v(x)",
    )
    .await;
    assert!(!plan.contains('\0'), "{plan:?}");
    assert!(plan.contains("as sum:1"), "{plan}");
    client
        .batch_execute(
            "CREATE TABLE visits (ts TIMESTAMP NOT NULL, country TEXT, bytes BIGINT) \
             WITH (time_column = 'ts', segment_granularity = 'hour')",
        )
        .await
        .unwrap();
    // Four hours, each its own segment; bytes grow with the hour.
    for hour in 0..4 {
        let rows: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    "('2024-06-01 {:02}:{:02}:00', '{}', {})",
                    10 + hour,
                    i,
                    ["DE", "FR", "US"][i % 3],
                    hour * 1000 + i as i64
                )
            })
            .collect();
        client
            .batch_execute(&format!("INSERT INTO visits VALUES {}", rows.join(", ")))
            .await
            .unwrap();
    }
    client.batch_execute("CHECKPOINT").await.unwrap();

    let by_time = "SELECT count(*) FROM visits \
                   WHERE ts >= '2024-06-01 11:00' AND ts < '2024-06-01 12:00'";
    let plan = explain(&client, by_time).await;
    assert!(
        plan.contains("segments=1 of 4 (3 pruned: 3 by time, 0 by statistics)"),
        "{plan}"
    );
    assert_eq!(count(&client, by_time).await, 50);

    // A range that cuts a segment: the time column alone decides which of its rows count,
    // exactly, so COUNT(*) still decodes no other column.
    let cut = "SELECT count(*) FROM visits WHERE ts >= '2024-06-01 10:30'";
    let plan = explain(&client, &format!("ANALYZE {cut}")).await;
    assert!(plan.contains("rows_decoded=0"), "{plan}");
    assert_eq!(count(&client, cut).await, 170);

    let by_statistics = "SELECT count(*) FROM visits WHERE bytes >= 2000";
    let plan = explain(&client, by_statistics).await;
    assert!(
        plan.contains("segments=2 of 4 (2 pruned: 0 by time, 2 by statistics)"),
        "{plan}"
    );
    assert_eq!(count(&client, by_statistics).await, 100);

    let by_bitmap = "SELECT count(*) FROM visits WHERE country IN ('DE', 'US') AND bytes < 3000";
    let plan = explain(&client, by_bitmap).await;
    assert!(plan.contains("bitmap=["), "{plan}");
    assert!(plan.contains("country"), "{plan}");
    assert!(plan.contains("segments=3 of 4"), "{plan}");
    assert_eq!(count(&client, by_bitmap).await, 99);

    // The same filter with parameters, through the extended protocol.
    let prepared = client
        .query_one(
            "SELECT count(*) FROM visits WHERE country IN ($1, $2) AND bytes < $3",
            &[&"DE", &"US", &3000i64],
        )
        .await
        .unwrap();
    assert_eq!(prepared.get::<_, i64>(0), 99);
    let statement = client
        .prepare("SELECT count(*) FROM visits WHERE country = $1")
        .await
        .unwrap();
    for (country, expected) in [("DE", 68i64), ("FR", 68), ("XX", 0)] {
        let row = client.query_one(&statement, &[&country]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), expected, "{country}");
    }

    // EXPLAIN ANALYZE counts what the segment scans did. The bitmap answers the country and
    // the statistics answer `bytes < 3000` for every kept segment: nothing is decoded, and
    // the count is the bitmaps' (the aggregation runs in the scan).
    let plan = explain(
        &client,
        "ANALYZE SELECT count(*) FROM visits WHERE country = 'DE' AND bytes < 3000",
    )
    .await;
    for metric in [
        "HengeAggregateExec: aggregation pushed down, gby=[], aggr=[count(Int64(1))]",
        "segments_scanned=3",
        "blocks_decoded=0",
        "rows_decoded=0",
        "segment_scan_time=",
        "segment_scans=[visits_2024-06-01T1",
        ": rows=17 time=",
    ] {
        assert!(plan.contains(metric), "{metric} in {plan}");
    }
    // `bytes < 2020` holds for all of the first two hours but only part of the third: that
    // segment's block is decoded and the filter evaluated on it.
    let plan = explain(
        &client,
        "ANALYZE SELECT count(*) FROM visits WHERE country = 'DE' AND bytes < 2020",
    )
    .await;
    for metric in ["segments_scanned=3", "blocks_decoded=1,"] {
        assert!(plan.contains(metric), "{metric} in {plan}");
    }
    let partly = "SELECT count(*) FROM visits WHERE country = 'DE' AND bytes < 2020";
    assert_eq!(count(&client, partly).await, 41);

    // A time range covering whole segments is answered from their statistics: COUNT(*)
    // decodes nothing at all.
    let plan = explain(
        &client,
        "ANALYZE SELECT count(*) FROM visits \
         WHERE ts >= '2024-06-01 10:00' AND ts < '2024-06-01 12:00'",
    )
    .await;
    assert!(plan.contains("segments_scanned=2"), "{plan}");
    assert!(plan.contains("rows_decoded=0"), "{plan}");
    assert!(
        plan.contains("segment_scans=[visits_2024-06-01T1"),
        "{plan}"
    );
    assert!(plan.contains(": rows=50 time="), "{plan}");

    // LIMIT reaches the scan and stops it: one partition reads one segment for 5 rows.
    client
        .batch_execute("SET datafusion.execution.target_partitions = 1")
        .await
        .unwrap();
    let plan = explain(
        &client,
        "ANALYZE SELECT * FROM visits WHERE country = 'FR' LIMIT 5",
    )
    .await;
    assert!(plan.contains("limit=5"), "{plan}");
    assert!(plan.contains("segments_scanned=1,"), "{plan}");

    // With pushdown off the scan prunes nothing and uses no bitmap, and answers the same.
    // A prepared SHOW reads the setting each time it runs.
    let show = client.prepare("SHOW henge.pushdown").await.unwrap();
    let value = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, String>(1);
    assert_eq!(value(client.query(&show, &[]).await.unwrap()), "true");
    client
        .batch_execute("SET henge.pushdown = false")
        .await
        .unwrap();
    assert_eq!(value(client.query(&show, &[]).await.unwrap()), "false");
    let plan = explain(&client, by_bitmap).await;
    assert!(plan.contains("segments=4 of 4 (0 pruned"), "{plan}");
    assert!(!plan.contains("bitmap"), "{plan}");
    assert_eq!(count(&client, by_bitmap).await, 99);
    client
        .batch_execute("SET henge.pushdown = true")
        .await
        .unwrap();

    // COUNT(*) without a filter comes from metadata: no scan runs.
    let plan = explain(&client, "ANALYZE SELECT count(*) FROM visits").await;
    assert!(!plan.contains("HengeScanExec"), "{plan}");
    client
        .batch_execute("INSERT INTO visits VALUES ('2024-06-01 15:00:00', 'DE', 1)")
        .await
        .unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM visits").await, 201);

    // No filter: nothing pruned, nothing said about bitmaps.
    let plan = explain(&client, "SELECT min(bytes) FROM visits").await;
    assert!(plan.contains("segments=4 of 4 (0 pruned"), "{plan}");
    assert!(!plan.contains("bitmap"), "{plan}");
}

#[tokio::test]
async fn explain_shows_aggregation_pushed_down() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE clicks (ts TIMESTAMP NOT NULL, country TEXT, page TEXT, ms BIGINT) \
             WITH (time_column = 'ts', segment_granularity = 'hour'); \
             INSERT INTO clicks SELECT to_timestamp(1717232400 + i * 36)::timestamp, \
               CASE WHEN i % 4 = 0 THEN 'DE' WHEN i % 4 = 1 THEN 'FR' ELSE 'US' END, \
               '/p/' || (i % 10), i FROM generate_series(0, 299) AS g(i); \
             CHECKPOINT; \
             INSERT INTO clicks VALUES ('2024-06-01 12:30:00', 'DE', '/new', 1)",
        )
        .await
        .unwrap();

    // GROUP BY a string column: partial aggregates per segment on dictionary ids, merged by
    // DataFusion's final aggregation.
    let by_country =
        "SELECT country, count(*), sum(ms)::BIGINT FROM clicks GROUP BY country ORDER BY 1";
    let plan = explain(&client, by_country).await;
    assert!(
        plan.contains("HengeAggregateExec: aggregation pushed down, gby=[country]"),
        "{plan}"
    );
    assert!(plan.contains("segments=3 of 3"), "{plan}");
    assert!(!plan.contains("mode=Partial"), "{plan}");
    let rows = client.query(by_country, &[]).await.unwrap();
    let answer: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2)))
        .collect();
    assert_eq!(
        answer,
        vec![
            ("DE".into(), 76, (0..300).step_by(4).sum::<i64>() + 1),
            ("FR".into(), 75, (1..300).step_by(4).sum()),
            ("US".into(), 150, (0..300).filter(|i| i % 4 >= 2).sum()),
        ]
    );

    // Grafana's time buckets with a time filter: the bucket is computed from the decoded
    // time column, the filter decides which segments and rows take part.
    let grafana = "SELECT floor(extract(epoch from ts) / 3600) * 3600 AS time, count(*) \
                   FROM clicks WHERE ts >= '2024-06-01 10:00' AND ts < '2024-06-01 12:00' \
                   GROUP BY 1 ORDER BY 1";
    let plan = explain(&client, &format!("ANALYZE {grafana}")).await;
    assert!(
        plan.contains("aggregation pushed down, gby=[floor("),
        "{plan}"
    );
    assert!(plan.contains("segments_scanned=2"), "{plan}");
    let counts: Vec<i64> = client
        .query(grafana, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(1))
        .collect();
    assert_eq!(counts, vec![100, 100]);

    // count(*) under a bitmap filter decodes nothing; grouping by a string decodes only its ids.
    let plan = explain(
        &client,
        "ANALYZE SELECT count(*) FROM clicks WHERE country = 'FR' AND ts < '2024-06-01 11:00'",
    )
    .await;
    assert!(plan.contains("rows_decoded=0"), "{plan}");
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM clicks WHERE country = 'FR' AND ts < '2024-06-01 11:00'"
        )
        .await,
        50
    );

    // count(*) grouped by a string under a filter the indexes answer: each group's count is
    // the size of its value's bitmap among the kept rows, and no row is decoded.
    let by_bitmaps = "SELECT country, count(*) FROM clicks WHERE ts >= '2024-06-01 10:00' \
                      GROUP BY country ORDER BY country";
    let plan = explain(&client, &format!("ANALYZE {by_bitmaps}")).await;
    assert!(plan.contains("segments_scanned=2"), "{plan}");
    assert!(plan.contains("rows_decoded=0"), "{plan}");
    let counts: Vec<(String, i64)> = client
        .query(by_bitmaps, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        counts,
        vec![("DE".into(), 51), ("FR".into(), 50), ("US".into(), 100)]
    );

    // Through a subquery's projection: its aliases and expressions are computed in the scan.
    let subquery = "SELECT c, count(*), sum(m)::BIGINT FROM \
                    (SELECT country AS c, ms * 2 AS m FROM clicks WHERE ms < 100) AS s \
                    GROUP BY c ORDER BY c";
    let plan = explain(&client, subquery).await;
    assert!(
        plan.contains("HengeAggregateExec: aggregation pushed down, gby=[c]"),
        "{plan}"
    );
    let sums: Vec<(String, i64, i64)> = client
        .query(subquery, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        sums,
        vec![
            ("DE".into(), 26, 2 * ((0..100).step_by(4).sum::<i64>() + 1)),
            ("FR".into(), 25, 2 * (1..100).step_by(4).sum::<i64>()),
            (
                "US".into(),
                50,
                2 * (0..100).filter(|i| i % 4 >= 2).sum::<i64>()
            ),
        ]
    );

    // Aggregates DataFusion must see rows for (ordered ones) stay as they were.
    let ordered = "SELECT country, array_agg(page ORDER BY ms) FROM clicks GROUP BY country";
    let plan = explain(&client, ordered).await;
    assert!(!plan.contains("HengeAggregateExec"), "{plan}");
    assert!(plan.contains("HengeScanExec"), "{plan}");

    // With pushdown off DataFusion aggregates the scanned rows itself, to the same answer.
    client
        .batch_execute("SET henge.pushdown = false")
        .await
        .unwrap();
    let plan = explain(&client, by_country).await;
    assert!(!plan.contains("HengeAggregateExec"), "{plan}");
    assert!(plan.contains("mode=Partial"), "{plan}");
    let again = client.query(by_country, &[]).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2)))
            .collect::<Vec<(String, i64, i64)>>(),
        answer
    );
}

#[tokio::test]
async fn pushdown_works_through_views() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE hits (ts TIMESTAMP NOT NULL, country TEXT, ms BIGINT) \
             WITH (time_column = 'ts', segment_granularity = 'hour'); \
             INSERT INTO hits SELECT to_timestamp(1717232400 + i * 36)::timestamp, \
               CASE WHEN i % 3 = 0 THEN 'DE' WHEN i % 3 = 1 THEN 'FR' ELSE 'US' END, i \
               FROM generate_series(0, 299) AS g(i); \
             CHECKPOINT; \
             CREATE VIEW per_country AS SELECT country, count(*) AS n, sum(ms) AS total \
               FROM hits GROUP BY country; \
             CREATE VIEW recent AS SELECT * FROM hits WHERE ts >= '2024-06-01 10:00'",
        )
        .await
        .unwrap();

    // A filter on the view's grouping column reaches the scan's bitmap index, and the
    // aggregation is pushed down as it would be without the view.
    let plan = explain(&client, "SELECT n FROM per_country WHERE country = 'FR'").await;
    assert!(
        plan.contains("HengeAggregateExec: aggregation pushed down, gby=[country]"),
        "{plan}"
    );
    assert!(plan.contains("bitmap=[country = Utf8(\"FR\")]"), "{plan}");
    assert_eq!(
        count(&client, "SELECT n FROM per_country WHERE country = 'FR'").await,
        100
    );

    // The view's own time filter prunes segments.
    let plan = explain(&client, "SELECT count(*) FROM recent").await;
    assert!(
        plan.contains("segments=2 of 3 (1 pruned: 1 by time"),
        "{plan}"
    );
    assert_eq!(count(&client, "SELECT count(*) FROM recent").await, 200);
}

/// Exact `COUNT(DISTINCT dim)` on a string column comes from the segments' dictionaries
/// (without a filter: a segment's dictionary holds exactly its values) and bitmaps (under a
/// filter the indexes answer: the values whose bitmaps meet the kept rows): no row is
/// decoded, and the answer is exact (Druid can only approximate it), across segments and
/// buffered rows, equal to the plan without pushdown.
#[tokio::test]
async fn count_distinct_of_a_string_column_reads_dictionaries_and_bitmaps() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE hits (ts TIMESTAMP NOT NULL, page TEXT, country TEXT) \
             WITH (time_column = 'ts', segment_granularity = 'hour');
             INSERT INTO hits SELECT TIMESTAMP '2024-06-01 10:00:00' + i * INTERVAL '1 second', \
               CASE WHEN i % 97 = 0 THEN NULL ELSE 'page-' || (i * 13 % 200) END, 'c' || (i % 5) \
               FROM generate_series(0, 7199) AS g(i);
             CHECKPOINT;
             INSERT INTO hits VALUES ('2024-06-01 10:30:00', 'page-new', 'c1'), ('2024-06-01 11:00:00', 'page-7', 'c9')",
        )
        .await
        .unwrap();
    let queries = [
        "SELECT count(DISTINCT page) FROM hits",
        "SELECT count(DISTINCT page) FROM hits WHERE country = 'c1'",
        "SELECT count(DISTINCT page) FROM hits WHERE country IN ('c1', 'c2') AND ts < '2024-06-01 11:00'",
        "SELECT count(DISTINCT country) FROM hits WHERE page = 'page-7'",
    ];
    let mut pushed = Vec::new();
    for sql in queries {
        let plan = explain(&client, &format!("ANALYZE {sql}")).await;
        assert!(plan.contains("rows_decoded=0"), "{sql}: {plan}");
        pushed.push(count(&client, sql).await);
    }
    assert_eq!(pushed[0], 201, "200 pages and one more in the buffer");
    client
        .batch_execute("SET henge.pushdown = false")
        .await
        .unwrap();
    for (sql, pushed) in queries.iter().zip(pushed) {
        assert_eq!(count(&client, sql).await, pushed, "{sql}");
    }
}

/// A selective bitmap filter decodes only the rows it selects, not their blocks: the
/// values of a few rows are read alone from the bit-packed data.
#[tokio::test]
async fn a_few_rows_of_a_block_are_decoded_alone() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE picks (ts TIMESTAMP NOT NULL, k TEXT, b BIGINT, i INT, f DOUBLE PRECISION) \
             WITH (time_column = 'ts', segment_granularity = 'day'); \
             INSERT INTO picks SELECT '2024-06-01 10:00'::timestamp + i * INTERVAL '1 second', \
             'k' || (i % 500), i, CASE WHEN i % 1000 = 7 THEN NULL ELSE i * 2 END, i / 4.0 \
             FROM generate_series(0, 9999) s(i); \
             CHECKPOINT",
        )
        .await
        .unwrap();
    // 20 of 10,000 rows: only they are decoded, by the scan and by the pushed aggregation.
    let rows = "SELECT b, i, f FROM picks WHERE k = 'k7' ORDER BY b";
    let plan = explain(&client, &format!("ANALYZE {rows}")).await;
    assert!(plan.contains("rows_decoded=20,"), "{plan}");
    let answer = client.query(rows, &[]).await.unwrap();
    let got: Vec<(i64, Option<i32>, f64)> = answer
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i64, Option<i32>, f64)> = (0..20)
        .map(|n| {
            let i = 7 + 500 * n;
            let v = (i % 1000 != 7).then_some(i as i32 * 2);
            (i, v, i as f64 / 4.0)
        })
        .collect();
    assert_eq!(got, expected);
    let sums = "SELECT count(*), sum(b)::text, count(i), sum(f) FROM picks WHERE k = 'k7'";
    let plan = explain(&client, &format!("ANALYZE {sums}")).await;
    assert!(plan.contains("rows_decoded=20,"), "{plan}");
    let row = client.query_one(sums, &[]).await.unwrap();
    let (n, b, i, f): (i64, String, i64, f64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((n, b.as_str(), i, f), (20, "95140", 10, 23785.0));
    // Many rows selected: the blocks are decoded whole, with the same answers.
    let wide = "SELECT count(*), count(i) FROM picks WHERE k LIKE 'k1%'";
    let row = client.query_one(wide, &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (2220, 2220));
}

#[tokio::test]
async fn long_runs_of_one_time_bucket_are_aggregated_run_by_run() {
    let server = TestServer::start();
    let client = server.connect().await;
    // 30,000 rows a second apart from 23:59:30: hourly buckets are runs of 3,600 rows (a
    // short one first), minutes runs of 60; a day's segment ends in the middle of a bucket's
    // rows on the next day's. Some rows held in memory, the rest published.
    client
        .batch_execute(
            "CREATE TABLE runs (ts TIMESTAMP NOT NULL, k TEXT, b BIGINT, f DOUBLE PRECISION, \
             p NUMERIC(10,2)) WITH (time_column = 'ts', segment_granularity = 'day'); \
             INSERT INTO runs SELECT '2024-06-01 23:59:30'::timestamp + i * INTERVAL '1 second', \
             'k' || (i % 7), CASE WHEN i % 11 = 3 THEN NULL ELSE i % 1000 - 300 END, i / 4.0, \
             (i % 500) / 100.0 FROM generate_series(0, 24999) s(i); \
             CHECKPOINT; \
             INSERT INTO runs SELECT '2024-06-02 06:56:10'::timestamp + i * INTERVAL '1 second', \
             'k' || (i % 3), i, i / 2.0, 1.25 FROM generate_series(0, 4999) s(i)",
        )
        .await
        .unwrap();
    let aggregates = "count(*), count(b), sum(b), avg(b), min(f), max(f), sum(f), avg(f), \
                      sum(p), count(DISTINCT k), sum(b) FILTER (WHERE k = 'k1'), \
                      max(k) FILTER (WHERE b > 600)";
    let queries = [
        format!("SELECT date_trunc('hour', ts) AS h, {aggregates} FROM runs GROUP BY h ORDER BY h"),
        format!("SELECT date_trunc('day', ts) AS d, {aggregates} FROM runs GROUP BY d ORDER BY d"),
        format!(
            "SELECT date_trunc('minute', ts) AS m, {aggregates} FROM runs \
             WHERE ts < '2024-06-02 01:00' GROUP BY m ORDER BY m"
        ),
        format!(
            "SELECT date_trunc('hour', ts) AS h, {aggregates} FROM runs \
             WHERE k <> 'k2' GROUP BY h ORDER BY h"
        ),
    ];
    let plan = explain(&client, &queries[0]).await;
    assert!(plan.contains("HengeAggregateExec"), "{plan}");
    let pushed = same_without_pushdown(&client, &queries).await;
    assert_eq!(pushed[0].len(), 10);
    assert_eq!(pushed[0][0][1].as_deref(), Some("30"));
    assert_eq!(pushed[0][1][1].as_deref(), Some("3600"));

    // Runs of one string key: 5,000 rows share each time, and a segment's rows are sorted
    // by time and then by the strings, so each (time, k) is a run of ~700 rows of one
    // group; grouped by the strings alone, by two keys, and under a filter.
    client
        .batch_execute(
            "CREATE TABLE keyed (ts TIMESTAMP NOT NULL, k TEXT, g TEXT, b BIGINT, \
             f DOUBLE PRECISION, p NUMERIC(10,2)) \
             WITH (time_column = 'ts', segment_granularity = 'day'); \
             INSERT INTO keyed SELECT '2024-06-01'::timestamp + (i / 5000) * INTERVAL '1 hour', \
             'k' || (i % 7), 'g' || (i % 2), CASE WHEN i % 11 = 3 THEN NULL ELSE i % 1000 - 300 END, \
             i / 4.0, (i % 500) / 100.0 FROM generate_series(0, 39999) s(i); \
             CHECKPOINT; \
             INSERT INTO keyed VALUES ('2024-06-01 03:00', 'k1', 'g0', 5, 0.5, 1.25)",
        )
        .await
        .unwrap();
    let queries = [
        format!("SELECT k, {aggregates} FROM keyed GROUP BY k ORDER BY k"),
        format!("SELECT k, g, {aggregates} FROM keyed GROUP BY k, g ORDER BY k, g"),
        format!("SELECT g, {aggregates} FROM keyed WHERE b > 0 GROUP BY g ORDER BY g"),
    ];
    let pushed = same_without_pushdown(&client, &queries).await;
    assert_eq!(pushed[0].len(), 7);
    assert_eq!(pushed[1].len(), 14);

    // A time bucket and string keys together (a Grafana panel by a dimension): each row's
    // group is found from its run of one bucket and its ids, the combinations hashed once;
    // NULL strings, a filter, buckets of several runs' times, and rows held in memory.
    client
        .batch_execute(
            "CREATE TABLE bucketed (ts TIMESTAMP NOT NULL, k TEXT, g TEXT, b BIGINT, \
             f DOUBLE PRECISION, p NUMERIC(10,2)) \
             WITH (time_column = 'ts', segment_granularity = 'day'); \
             INSERT INTO bucketed SELECT '2024-06-01'::timestamp + (i / 50) * INTERVAL '1 minute', \
             CASE WHEN i % 5 = 0 THEN NULL ELSE 'k' || (i % 4) END, 'g' || (i % 3), i % 97, \
             i / 8.0, (i % 300) / 100.0 FROM generate_series(0, 99999) s(i); \
             CHECKPOINT; \
             INSERT INTO bucketed VALUES ('2024-06-01 03:00', 'k1', 'g0', 5, 0.5, 1.25), \
             ('2024-06-02 01:00', NULL, 'g9', 7, 2.5, 0.75)",
        )
        .await
        .unwrap();
    let queries = [
        format!(
            "SELECT date_trunc('hour', ts) AS h, k, {aggregates} FROM bucketed \
             GROUP BY h, k ORDER BY h, k"
        ),
        "SELECT floor(extract(epoch from ts) / 7200) * 7200 AS t, g, k, count(*), sum(b) \
         FROM bucketed GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            .to_string(),
        format!(
            "SELECT k, date_trunc('day', ts) AS d, {aggregates} FROM bucketed \
             WHERE b > 10 GROUP BY k, d ORDER BY k, d"
        ),
    ];
    let pushed = same_without_pushdown(&client, &queries).await;
    // 34 hours (2,000 minutes) by four strings and NULL.
    assert_eq!(pushed[0].len(), 34 * 5);
}

#[tokio::test]
async fn totals_over_many_selected_rows_equal_the_plan_without_pushdown() {
    let server = TestServer::start();
    let client = server.connect().await;
    // A third of the rows match `k = 'a'` (the bitmap selects them with a mask, and the
    // pushed aggregation takes them out of each decoded block); `b` is 0 only on rows that
    // do not.
    client
        .batch_execute(
            "CREATE TABLE totals (ts TIMESTAMP NOT NULL, k TEXT, b BIGINT, f DOUBLE PRECISION) \
             WITH (time_column = 'ts', segment_granularity = 'day'); \
             INSERT INTO totals SELECT '2024-06-01'::timestamp + i * INTERVAL '1 second', \
             CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE NULL END, \
             CASE WHEN i % 3 = 1 THEN 0 WHEN i % 13 = 0 THEN NULL ELSE i % 977 + 1 END, \
             CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 1000) / 8.0 END \
             FROM generate_series(0, 29999) s(i); \
             CHECKPOINT",
        )
        .await
        .unwrap();
    let queries = [
        "SELECT count(*), count(b), sum(b), avg(b), min(f), max(f), sum(f), avg(f), \
         count(DISTINCT b), min(k), max(k) FROM totals WHERE k = 'a'",
        "SELECT count(*), sum(f) FROM totals WHERE k IN ('a', 'b')",
        "SELECT count(*), sum(b) FROM totals WHERE k IS NULL",
        // Computed arguments and FILTERs are computed on the selected rows only: never a
        // division by the zeros of the others.
        "SELECT sum(100 / b), sum(b * 2), count(*) FILTER (WHERE 10 / b > 0) FROM totals \
         WHERE k = 'a'",
    ];
    let plan = explain(&client, &format!("ANALYZE {}", queries[0])).await;
    assert!(plan.contains("HengeAggregateExec"), "{plan}");
    assert!(plan.contains("rows=10000"), "{plan}");
    let pushed = same_without_pushdown(&client, &queries).await;
    assert_eq!(pushed[0][0][0].as_deref(), Some("10000"));
    assert_eq!(pushed[2][0][0].as_deref(), Some("10000"));
}
