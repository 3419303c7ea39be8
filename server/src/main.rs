//! `henge`: a real-time analytical database that speaks the PostgreSQL wire protocol.
//!
//! This crate is the front of the house: [`config`] loads settings, [`server`] runs the
//! process, [`wire`] speaks the protocol, [`session`] dispatches statements (DDL in
//! [`ddl`], COPY in [`copy`], everything else to DataFusion), and [`error`] turns every
//! error into a PostgreSQL SQLSTATE.

mod alert;
mod alter;
mod auth;
mod config;
mod copy;
mod ddl;
mod dialect;
mod dml;
mod error;
mod fast_insert;
mod foreign;
mod hostile;
mod limits;
mod notify;
mod params;
mod pipeline;
mod privileges;
mod results;
mod roles;
mod scram;
mod server;
mod session;
mod set;
mod stream;
mod tls;
mod view;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the C library's allocator: with many threads (the runtimes' and
/// the blocking pool's) glibc's per-thread arenas keep what one query freed from the next
/// one, and the process's resident memory climbs well past what it holds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option number of `purge_delay` (its `mi_option_e`, version 3, as built by
/// libmimalloc-sys; checked by a test against the option's default).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_collect(force: bool);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// How long freed pages stay with the allocator before going back to the system. Not 0: a
/// scan frees and allocates a block's buffers (512 KiB) over and over, and pages returned
/// at once came back zeroed by the kernel each time, which doubled the time of scans
/// (`SUM` over 6 M doubles: 12.5 ms at 0, 6.1 ms at 10 ms). Not mimalloc's second either:
/// see [`release_when_idle`].
const PURGE_DELAY_MS: std::ffi::c_long = 10;

fn set_purge_delay() {
    // SAFETY: sets a process-wide option of the allocator linked into this binary.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// Called by each runtime thread as it goes idle. mimalloc returns a thread's freed pages
/// to the system only when that thread allocates again, so memory a statement took on a
/// thread that then sat idle stayed resident (planning a 200,000-element IN list left
/// half a gigabyte behind): an idle thread hands back what it freed. The forced collect
/// visits the thread's pages, so a thread that parks often does it at most every
/// [`IDLE_COLLECT_EVERY`]; large frees come at the end of long work, past that interval.
pub(crate) fn release_when_idle() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let due = LAST.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < IDLE_COLLECT_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        // SAFETY: collects the calling thread's own heap.
        unsafe { mi_collect(true) }
    }
}

/// The least time between two forced collects of one thread (see [`release_when_idle`]).
const IDLE_COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

/// Stack of every runtime thread. Planning walks expression trees recursively (sqlparser's
/// visitors, DataFusion's rewrites), one frame or more per level: with tokio's 2 MiB a sum
/// of a few hundred terms overflowed it and took the server down. The space is reserved,
/// not used: pages are touched only as deep as a statement goes, and statements deeper than
/// the nesting limit are refused before planning (54001).
const THREAD_STACK: usize = 64 << 20;

#[derive(Parser)]
#[command(
    name = "henge",
    version,
    about = "A real-time analytical database that speaks PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// Configuration file (default: config/henge.toml if it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the configuration.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory, overriding the configuration.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Command::Serve {
        config,
        listen,
        data_dir,
    } = Cli::parse().command;
    set_purge_delay();
    let mut config = match config::Config::load(config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("henge: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    let filter = EnvFilter::try_from_env("HENGE_LOG")
        .or_else(|_| EnvFilter::try_new(&config.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .on_thread_park(release_when_idle)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("henge: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let query_runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.parallelism())
        .thread_name("henge-query")
        .thread_stack_size(THREAD_STACK)
        .on_thread_park(release_when_idle)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("henge: could not start the query runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(server::serve(config, query_runtime.handle().clone()));
    query_runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("henge: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod allocator_tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc's default purge delay is 1000 ms; no neighbouring option has it.
        // SAFETY: reads a process-wide option.
        assert_eq!(
            unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) },
            1000
        );
    }
}
