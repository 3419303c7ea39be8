//! Runs every `sql-tests/*.slt` file against a fresh `henge`, once through the simple and
//! once through the extended query protocol. `HENGE_SLT=name` runs only the files whose
//! path contains `name`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use henge_sql_tests::db::{HengeDb, Protocol};
use henge_sql_tests::server::TestServer;
use sqllogictest::{default_column_validator, Runner};

fn slt_files() -> Vec<PathBuf> {
    // Read at run time: a test binary reused from a shared target directory may have been
    // compiled in another checkout, so the compile-time value can point elsewhere.
    let dir = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read sql-tests/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            std::env::var("HENGE_SLT").map_or(true, |only| p.to_string_lossy().contains(&only))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

async fn run_all(protocol: Protocol) {
    let mut failures = Vec::new();
    for file in slt_files() {
        let server = Arc::new(Mutex::new(TestServer::start()));
        let mut runner = Runner::new(|| HengeDb::connect(server.clone(), protocol));
        runner.with_column_validator(default_column_validator);
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{} ({protocol:?}):\n{e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn slt_simple_protocol() {
    run_all(Protocol::Simple).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slt_extended_protocol() {
    run_all(Protocol::Extended).await;
}
