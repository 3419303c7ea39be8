//! Failure injection for crash tests: `HENGE_FAIL_AT=<point>` (or `<point>:<n>`, the n-th
//! time it is reached) makes the process abort at that named step, as `kill -9` would stop
//! it there: no destructor runs, nothing buffered is flushed.
//!
//! The points are named for the step they stop before or after (`persist.written`,
//! `handoff.uploaded`, …); `grep -rn 'failpoint::hit'` lists them. Unset, a point costs one
//! relaxed load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable naming the point to stop at.
pub const ENV: &str = "HENGE_FAIL_AT";

struct Target {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let value = std::env::var(ENV).ok()?;
            let (name, nth) = match value.rsplit_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().ok()?),
                None => (value, 1),
            };
            Some(Target {
                name,
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process if `HENGE_FAIL_AT` names this point (and this is the n-th time).
pub fn hit(point: &str) {
    let Some(target) = target() else { return };
    if target.name != point {
        return;
    }
    if target.seen.fetch_add(1, Ordering::Relaxed) + 1 == target.nth {
        eprintln!("henge: failure injected at {point}");
        std::process::abort();
    }
}
