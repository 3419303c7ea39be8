//! The ingest memory budget: rows in memory (buffered and staged) of all tables count
//! against one limit. Writers reserve what they bring before it is added; at the limit they
//! wait for a persist to free memory (back-pressure) and give up after a while with
//! SQLSTATE 53200, before anything of their statement is applied.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::{Error, Result};

/// One process-wide budget.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    wait: Duration,
    /// Bytes reserved by writers whose rows are not yet counted by the buffers.
    reserved: Mutex<usize>,
    /// Notified whenever memory is freed.
    released: Notify,
    /// Notified when a writer has to wait: the persister should run now.
    pressure: Notify,
}

impl MemoryBudget {
    pub fn new(limit: usize, wait: Duration) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            wait,
            reserved: Mutex::new(0),
            released: Notify::new(),
            pressure: Notify::new(),
        })
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved by writers right now.
    pub fn reserved(&self) -> usize {
        *self.reserved.lock()
    }

    /// Reserves `bytes` if they fit beside `buffered` bytes already in memory (or if
    /// nothing else is in memory, so that a statement larger than the budget can still
    /// run alone).
    pub fn try_reserve(self: &Arc<Self>, bytes: usize, buffered: usize) -> Option<Reservation> {
        self.try_reserve_beside(bytes, buffered, 0)
    }

    /// [`MemoryBudget::try_reserve`] for a caller already holding `held` bytes of it: alone
    /// when nothing else is in memory.
    fn try_reserve_beside(
        self: &Arc<Self>,
        bytes: usize,
        buffered: usize,
        held: usize,
    ) -> Option<Reservation> {
        let mut reserved = self.reserved.lock();
        let used = buffered + *reserved;
        if used + bytes <= self.limit || used <= held {
            *reserved += bytes;
            return Some(Reservation {
                budget: self.clone(),
                bytes,
            });
        }
        None
    }

    /// Reserves `bytes`, waiting while the budget is exhausted; `buffered` tells what the
    /// buffers hold now. Fails with [`Error::MemoryExhausted`] after the configured wait.
    pub async fn reserve(
        self: &Arc<Self>,
        bytes: usize,
        buffered: impl Fn() -> usize,
    ) -> Result<Reservation> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reservation) = self.try_reserve(bytes, buffered()) {
                return Ok(reservation);
            }
            self.pressure.notify_one();
            // Wake now and then too: memory freed by a DROP TABLE is not announced.
            let until = deadline.min(tokio::time::Instant::now() + Duration::from_millis(200));
            let _ = tokio::time::timeout_at(until, notified).await;
            if tokio::time::Instant::now() >= deadline {
                if let Some(reservation) = self.try_reserve(bytes, buffered()) {
                    return Ok(reservation);
                }
                return Err(Error::MemoryExhausted {
                    waited: self.wait,
                    limit: self.limit,
                });
            }
        }
    }

    /// Reserves `bytes` for a merge that already holds `held` bytes of the budget: it waits
    /// as writers do while the budget is exhausted, but after the configured wait it takes
    /// the memory anyway (writers then wait for it), since a merge that gave up would free
    /// nothing and leave its pieces to be merged later all the same.
    pub async fn reserve_for_merge(
        self: &Arc<Self>,
        bytes: usize,
        held: usize,
        buffered: impl Fn() -> usize,
    ) -> Reservation {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reservation) = self.try_reserve_beside(bytes, buffered(), held) {
                return reservation;
            }
            if tokio::time::Instant::now() >= deadline {
                *self.reserved.lock() += bytes;
                return Reservation {
                    budget: self.clone(),
                    bytes,
                };
            }
            self.pressure.notify_one();
            let until = deadline.min(tokio::time::Instant::now() + Duration::from_millis(200));
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    /// Tells waiting writers that memory was freed.
    pub fn freed(&self) {
        self.released.notify_waiters();
    }

    /// Resolves when a writer is waiting for memory.
    pub async fn pressed(&self) {
        self.pressure.notified().await
    }
}

/// Bytes reserved in the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Reservation {
    /// Adds another reservation to this one.
    pub fn merge(&mut self, mut other: Reservation) {
        self.bytes += std::mem::take(&mut other.bytes);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves up to `bytes` of this reservation into a new one.
    pub fn split_off(&mut self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Reservation {
            budget: self.budget.clone(),
            bytes,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            let mut reserved = self.budget.reserved.lock();
            *reserved = reserved.saturating_sub(self.bytes);
            drop(reserved);
            self.budget.freed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_wait_for_memory_and_give_up_in_time() {
        let budget = MemoryBudget::new(100, Duration::from_millis(300));
        let first = budget.reserve(60, || 0).await.unwrap();
        // Alone, a request larger than the budget is let through.
        assert!(budget.try_reserve(500, 0).is_none());
        drop(first);
        let big = budget.try_reserve(500, 0).expect("alone");
        drop(big);
        let held = budget.reserve(80, || 0).await.unwrap();
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(50, || 0).await.map(|r| r.bytes()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second writer waits");
        drop(held);
        assert_eq!(waiter.await.unwrap().unwrap(), 50);
        assert_eq!(budget.reserved(), 0);

        let _held = budget.reserve(90, || 0).await.unwrap();
        let started = std::time::Instant::now();
        let error = budget.reserve(20, || 0).await.unwrap_err();
        assert!(matches!(error, Error::MemoryExhausted { .. }), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Buffered rows count too.
        assert!(budget.try_reserve(5, 95).is_none());
    }

    #[tokio::test]
    async fn merges_wait_for_memory_then_take_it() {
        let budget = MemoryBudget::new(100, Duration::from_millis(300));
        // Alone beside its own reservation, a merge may pass the limit.
        let mut merge = budget.reserve_for_merge(70, 0, || 0).await;
        merge.merge(budget.reserve_for_merge(70, 70, || 0).await);
        assert_eq!(budget.reserved(), 140);
        drop(merge);
        // Beside buffered rows it waits for them to be persisted…
        let buffered = Arc::new(std::sync::atomic::AtomicUsize::new(80));
        let waiter = {
            let (budget, buffered) = (budget.clone(), buffered.clone());
            tokio::spawn(async move {
                let seen = || buffered.load(std::sync::atomic::Ordering::SeqCst);
                budget.reserve_for_merge(50, 0, seen).await.bytes()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the merge waits");
        buffered.store(0, std::sync::atomic::Ordering::SeqCst);
        budget.freed();
        assert_eq!(waiter.await.unwrap(), 50);
        // …and takes the memory after the wait when they never are.
        let held = budget.reserve(90, || 0).await.unwrap();
        let started = std::time::Instant::now();
        let merge = budget.reserve_for_merge(50, 0, || 0).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(budget.reserved(), 140);
        assert!(budget.try_reserve(1, 0).is_none(), "writers wait for it");
        drop((held, merge));
        assert_eq!(budget.reserved(), 0);
    }
}
