//! The decoded dictionaries of string columns, shared by every open segment and bounded in
//! bytes.
//!
//! A dictionary sits compressed in its segment file; a query that reads a string column or
//! filters on it decodes it once and keeps it here, so that the next query finds it
//! decoded. Kept for as long as its segment is open, the dictionaries of a large table would
//! hold as much memory as its distinct strings (some 2 GB for TPC-H lineitem at scale factor
//! 10, most of it `l_comment`): past the capacity the least recently used ones go, and are
//! decoded again when next asked for. A query holds the ones it uses (an `Arc`), so eviction
//! never pulls one from under it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Array, StringArray};

/// The capacity until [`set_capacity`] is called: 256 MiB.
const DEFAULT_CAPACITY: usize = 256 << 20;

/// Which dictionary: the open segment (a number unique to each reader) and the column.
type Key = (u64, usize);

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Keys by last use, oldest first.
    by_use: BTreeMap<u64, Key>,
    /// Advanced at each use.
    clock: u64,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    dictionary: Arc<StringArray>,
    bytes: usize,
    used: u64,
}

/// Decoded dictionaries, least recently used out first past a capacity in bytes.
#[derive(Debug)]
pub struct DictionaryCache {
    capacity: AtomicUsize,
    state: Mutex<State>,
}

/// The process's cache.
pub fn cache() -> &'static DictionaryCache {
    static CACHE: OnceLock<DictionaryCache> = OnceLock::new();
    CACHE.get_or_init(|| DictionaryCache::new(DEFAULT_CAPACITY))
}

/// Sets the capacity of the process's cache (`dictionary_cache` in the configuration).
pub fn set_capacity(bytes: usize) {
    let cache = cache();
    cache.capacity.store(bytes, Ordering::Relaxed);
    cache.evict(&mut cache.lock());
}

impl DictionaryCache {
    pub fn new(capacity: usize) -> DictionaryCache {
        DictionaryCache {
            capacity: AtomicUsize::new(capacity),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dictionary of `key`, if it is held; counts as a use.
    pub(crate) fn get(&self, key: Key) -> Option<Arc<StringArray>> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(&key)?;
        let before = std::mem::replace(&mut entry.used, now);
        let dictionary = entry.dictionary.clone();
        state.by_use.remove(&before);
        state.by_use.insert(now, key);
        Some(dictionary)
    }

    /// Keeps `dictionary` as `key`'s (or the one another query kept meanwhile) and returns
    /// it, making room by dropping the least recently used ones. A dictionary larger than
    /// the whole capacity is returned without being kept.
    pub(crate) fn insert(&self, key: Key, dictionary: StringArray) -> Arc<StringArray> {
        let bytes = dictionary.get_array_memory_size();
        let dictionary = Arc::new(dictionary);
        if bytes > self.capacity.load(Ordering::Relaxed) {
            return dictionary;
        }
        let mut state = self.lock();
        if let Some(kept) = state.entries.get(&key) {
            return kept.dictionary.clone();
        }
        state.clock += 1;
        let used = state.clock;
        state.entries.insert(
            key,
            Entry {
                dictionary: dictionary.clone(),
                bytes,
                used,
            },
        );
        state.by_use.insert(used, key);
        state.bytes += bytes;
        self.evict(&mut state);
        dictionary
    }

    /// Forgets the dictionaries of the segment reader `reader` (`columns` columns), closed.
    pub(crate) fn forget(&self, reader: u64, columns: usize) {
        let mut state = self.lock();
        for column in 0..columns {
            if let Some(entry) = state.entries.remove(&(reader, column)) {
                state.by_use.remove(&entry.used);
                state.bytes -= entry.bytes;
            }
        }
    }

    /// Bytes of the dictionaries held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn evict(&self, state: &mut State) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        while state.bytes > capacity {
            let Some((_, key)) = state.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = state.entries.remove(&key) {
                state.bytes -= entry.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(n: usize) -> StringArray {
        (0..n).map(|i| Some(format!("value {i:08}"))).collect()
    }

    #[test]
    fn the_least_recently_used_dictionaries_go_past_the_capacity() {
        let size = strings(1000).get_array_memory_size();
        let cache = DictionaryCache::new(size * 2 + size / 2);
        let a = cache.insert((1, 0), strings(1000));
        cache.insert((1, 1), strings(1000));
        assert_eq!(cache.bytes(), size * 2);
        // Using the first makes the second the oldest.
        assert!(cache.get((1, 0)).is_some());
        cache.insert((2, 0), strings(1000));
        assert_eq!(cache.bytes(), size * 2);
        assert!(cache.get((1, 1)).is_none(), "the least recently used went");
        assert!(cache.get((1, 0)).is_some());
        assert!(cache.get((2, 0)).is_some());
        // What a query holds stays whole, evicted or not.
        assert_eq!(a.len(), 1000);
        // Too large to keep: handed back, not kept.
        let big = cache.insert((3, 0), strings(4000));
        assert_eq!(big.len(), 4000);
        assert!(cache.get((3, 0)).is_none());
        // A closed reader's dictionaries are forgotten.
        cache.forget(1, 2);
        assert!(cache.get((1, 0)).is_none());
        assert_eq!(cache.bytes(), size);
    }
}
