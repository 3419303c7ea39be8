//! The nine TPC-H queries of the Druid paper's benchmark (figures 10 and 11), and how their
//! answers are compared across systems.

/// One benchmark query.
pub struct Query {
    pub name: &'static str,
    pub sql: &'static str,
    /// Ends in `ORDER BY 2 DESC LIMIT 100`: rows tied on the second column may differ.
    pub top_100: bool,
}

const SUMS: &str = "SUM(l_extendedprice), SUM(l_discount), SUM(l_tax), SUM(l_quantity)";

/// The queries, in the paper's order.
pub fn queries() -> Vec<Query> {
    let q = |name, sql: String, top_100| Query {
        name,
        sql: Box::leak(sql.into_boxed_str()),
        top_100,
    };
    let top_details = "SELECT l_partkey, SUM(l_quantity), SUM(l_extendedprice), \
                       MIN(l_discount), MAX(l_discount) FROM lineitem";
    vec![
        q(
            "count_star_interval",
            "SELECT COUNT(*) FROM lineitem \
             WHERE l_shipdate BETWEEN '1992-01-03' AND '1998-11-30'"
                .into(),
            false,
        ),
        q(
            "sum_price",
            "SELECT SUM(l_extendedprice) FROM lineitem".into(),
            false,
        ),
        q("sum_all", format!("SELECT {SUMS} FROM lineitem"), false),
        q(
            "sum_all_year",
            format!(
                "SELECT date_trunc('year', l_shipdate), {SUMS} FROM lineitem \
                 GROUP BY date_trunc('year', l_shipdate)"
            ),
            false,
        ),
        q(
            "sum_all_filter",
            format!("SELECT {SUMS} FROM lineitem WHERE l_shipmode LIKE '%AIR%'"),
            false,
        ),
        q(
            "top_100_parts",
            "SELECT l_partkey, SUM(l_quantity) FROM lineitem \
             GROUP BY l_partkey ORDER BY 2 DESC LIMIT 100"
                .into(),
            true,
        ),
        q(
            "top_100_parts_details",
            format!("{top_details} GROUP BY l_partkey ORDER BY 2 DESC LIMIT 100"),
            true,
        ),
        q(
            "top_100_parts_filter",
            format!(
                "{top_details} WHERE l_shipdate BETWEEN '1996-01-15' AND '1998-03-15' \
                 GROUP BY l_partkey ORDER BY 2 DESC LIMIT 100"
            ),
            true,
        ),
        q(
            "top_100_commitdate",
            "SELECT l_commitdate, SUM(l_quantity) FROM lineitem \
             GROUP BY l_commitdate ORDER BY 2 DESC LIMIT 100"
                .into(),
            true,
        ),
    ]
}

/// Filtered counts and group-bys over lineitem, to measure the scan's pushdown (pruning
/// by time and statistics, bitmap indexes, aggregation on dictionary ids) against a scan
/// that evaluates every row and hands it to DataFusion's aggregation.
pub fn pushdown_queries() -> Vec<Query> {
    let q = |name, sql| Query {
        name,
        sql,
        top_100: false,
    };
    vec![
        q(
            "count_one_shipmode",
            "SELECT COUNT(*) FROM lineitem WHERE l_shipmode = 'AIR'",
        ),
        q(
            "count_one_month",
            "SELECT COUNT(*) FROM lineitem \
             WHERE l_shipdate >= '1995-03-01' AND l_shipdate < '1995-04-01'",
        ),
        q(
            "sum_two_shipmodes_by_flag",
            "SELECT l_returnflag, COUNT(*), SUM(l_quantity) FROM lineitem \
             WHERE l_shipmode IN ('AIR', 'RAIL') GROUP BY l_returnflag",
        ),
        q(
            "shipmodes_in_one_year",
            "SELECT l_shipmode, COUNT(*), SUM(l_extendedprice) FROM lineitem \
             WHERE l_shipdate BETWEEN '1996-01-01' AND '1996-12-31' GROUP BY l_shipmode",
        ),
        q(
            "instruct_like_and_quantity",
            "SELECT COUNT(*) FROM lineitem \
             WHERE l_shipinstruct LIKE 'DELIVER%' AND l_quantity > 45",
        ),
        q(
            "flag_and_status_one_quarter",
            "SELECT COUNT(*), SUM(l_discount) FROM lineitem WHERE l_returnflag = 'R' \
             AND l_linestatus = 'F' AND l_shipdate >= '1994-01-01' AND l_shipdate < '1994-04-01'",
        ),
        q(
            "count_by_shipmode",
            "SELECT l_shipmode, COUNT(*) FROM lineitem GROUP BY l_shipmode",
        ),
        q(
            "sums_by_flag_and_status",
            "SELECT l_returnflag, l_linestatus, COUNT(*), SUM(l_quantity), \
             SUM(l_extendedprice), AVG(l_discount) FROM lineitem GROUP BY l_returnflag, l_linestatus",
        ),
        q(
            "count_by_month",
            "SELECT date_trunc('month', l_shipdate), COUNT(*) FROM lineitem GROUP BY 1",
        ),
        q(
            "grafana_weekly_by_shipmode",
            "SELECT floor(extract(epoch from l_shipdate) / 604800) * 604800 AS time, \
             l_shipmode, COUNT(*) FROM lineitem \
             WHERE l_shipdate >= '1996-01-01' AND l_shipdate < '1997-01-01' GROUP BY 1, 2",
        ),
        q(
            "distinct_instructions_by_flag",
            "SELECT l_returnflag, COUNT(DISTINCT l_shipinstruct) FROM lineitem \
             GROUP BY l_returnflag",
        ),
    ]
}

/// Rows as text, one string per value (`NULL` for null).
pub type Rows = Vec<Vec<String>>;

/// Whether two systems gave the same answer to `query`, or where they differ.
///
/// Numbers are equal within a relative 1e-9 (sums of doubles depend on the order they are
/// added in); timestamps may be written with `T` or a space, and midnight as a date. Row order counts only where the
/// query orders; in the top-100 queries the ordered column must match row by row, and rows
/// whose key both systems returned must match entirely (keys tied at the cut may differ).
pub fn compare(query: &Query, ours: &Rows, theirs: &Rows) -> Result<(), String> {
    if ours.len() != theirs.len() {
        return Err(format!("{} rows against {}", ours.len(), theirs.len()));
    }
    if query.top_100 {
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            if !same_value(&a[1], &b[1]) {
                return Err(format!("row {i}: {a:?} against {b:?}"));
            }
        }
        for a in ours {
            if let Some(b) = theirs.iter().find(|b| same_value(&a[0], &b[0])) {
                same_row(a, b)?;
            }
        }
        return Ok(());
    }
    let sorted = |rows: &Rows| {
        let mut rows = rows.clone();
        rows.sort();
        rows
    };
    for (a, b) in sorted(ours).iter().zip(&sorted(theirs)) {
        same_row(a, b)?;
    }
    Ok(())
}

fn same_row(a: &[String], b: &[String]) -> Result<(), String> {
    if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y)) {
        Ok(())
    } else {
        Err(format!("{a:?} against {b:?}"))
    }
}

fn same_value(a: &str, b: &str) -> bool {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    }
    // A timestamp at midnight and its date are one value (ClickHouse's date_trunc of a
    // timestamp is a date).
    let normal = |s: &str| {
        let s = s.replacen('T', " ", 1);
        let s = s.strip_suffix(".000000").map(str::to_owned).unwrap_or(s);
        s.strip_suffix(" 00:00:00").map(str::to_owned).unwrap_or(s)
    };
    a == b || normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[&[&str]]) -> Rows {
        text.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn answers_compare_by_meaning() {
        let all = queries();
        let year = all.iter().find(|q| q.name == "sum_all_year").unwrap();
        let a = rows(&[
            &["1993-01-01 00:00:00", "10.0"],
            &["1992-01-01 00:00:00", "1e3"],
        ]);
        let b = rows(&[
            &["1992-01-01T00:00:00", "1000"],
            &["1993-01-01T00:00:00", "10"],
        ]);
        assert_eq!(compare(year, &a, &b), Ok(()));
        let c = rows(&[
            &["1992-01-01T00:00:00", "1000"],
            &["1993-01-01T00:00:00", "11"],
        ]);
        assert!(compare(year, &a, &c).is_err());
        let dates = rows(&[&["1992-01-01", "1000"], &["1993-01-01", "10"]]);
        assert_eq!(compare(year, &a, &dates), Ok(()));

        let top = all.iter().find(|q| q.name == "top_100_parts").unwrap();
        let a = rows(&[&["7", "50"], &["3", "40"], &["9", "40"]]);
        let tie = rows(&[&["7", "50"], &["9", "40"], &["4", "40"]]);
        assert_eq!(compare(top, &a, &tie), Ok(()));
        let wrong = rows(&[&["7", "50"], &["9", "40"], &["4", "39"]]);
        assert!(compare(top, &a, &wrong).is_err());
    }
}
