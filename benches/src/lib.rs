//! Henge's benchmark harness. It is empty until the harness lands (issue 4: TPC-H queries
//! of the Druid paper, ingest and latency, side by side with DuckDB, DataFusion and
//! PostgreSQL); the crate exists so the workspace has the layout DESIGN.md fixes.
