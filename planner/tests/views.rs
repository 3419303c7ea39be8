//! Views read through the planner: a stored pair of views that read each other (as two
//! racing `CREATE OR REPLACE VIEW`s could store) is an error when read, not a planning
//! recursion that overflows the stack.

use std::sync::Arc;

use henge_ingest::{Engine, EngineOptions};
use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef, ViewDef};

fn view(name: &str, on: &str) -> ViewDef {
    ViewDef {
        id: 0,
        name: name.into(),
        query: format!("SELECT * FROM {on}"),
        columns: Vec::new(),
        depends_on: vec![on.into()],
    }
}

#[tokio::test]
async fn views_that_read_each_other_are_an_error_not_a_crash() {
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
    engine
        .create_table(TableDef {
            id: 0,
            name: "t".into(),
            columns: vec![ColumnDef {
                name: "v".into(),
                ty: ColumnType::BigInt,
                nullable: true,
                rollup: None,
                default: None,
            }],
            time_column: None,
            segment_granularity: Granularity::All,
            window_period_secs: henge_storage::schema::DEFAULT_WINDOW_PERIOD_SECS,
            rollup: false,
            query_granularity: None,
            limits: Default::default(),
        })
        .unwrap();
    engine.create_view(view("a", "t"), false).unwrap();
    engine.create_view(view("b", "a"), false).unwrap();
    let ctx = henge_planner::new_context(
        engine.clone(),
        1,
        Default::default(),
        Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        Default::default(),
    );
    assert!(ctx.sql("SELECT * FROM b").await.is_ok());

    // The engine stores what it is given; the server's check ran before, but a racing
    // replace of `a` could have passed it.
    engine.create_view(view("a", "b"), true).unwrap();
    let error = ctx.sql("SELECT * FROM b").await.unwrap_err().to_string();
    assert!(error.contains("infinite recursion"), "{error}");
}
