//! Runs Henge's sqllogictest suites against a real `henge` binary over the wire.
//!
//! [`server::TestServer`] starts `henge serve` on a free port with a fresh data directory
//! (and can `kill -9` and restart it); [`db::HengeDb`] drives it through tokio-postgres in
//! the simple or the extended query protocol. The `.slt` files beside this crate are run by
//! `tests/slt.rs` in both protocols.
//!
//! Beyond standard sqllogictest, `statement ok` with the SQL `RESTART HENGE` kills the
//! server with SIGKILL, starts it again on the same data directory and reconnects.
//! Errors read `<SQLSTATE>: <message>`, so `statement error 22P02: invalid input` checks both.

pub mod db;
pub mod kafka;
pub mod server;
pub mod values;
