//! What a rule holds between commits: its counted rows, in arrival order, linked by key.
//!
//! A watched table may have a hundred rules over a hundred thousand keys, each rule seeing
//! a fair share of millions of rows; what each row costs is what the rules cost. So
//! nothing here is allocated per row or per key: a rule's rows live in one ring (and
//! their aggregates' inputs in another beside it), each row pointing at the key's
//! previous row; a key is a small id, the same for every rule of its table that
//! partitions alike ([`Keys`]), and so is a text that `count(DISTINCT …)` counts. The
//! rings grow to the most rows the rule's windows have held and are reused from then on.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

type Hasher = foldhash::fast::RandomState;

/// No row: the end of a key's chain.
const NONE: u64 = u64::MAX;

/// No id yet, in a batch's ids.
const NO_ID: u32 = u32::MAX;

/// Texts as small ids, each alive while something holds it; an id no one holds any more
/// is given to the next new text.
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Arc<str>, u32, Hasher>,
    texts: Vec<Option<Arc<str>>>,
    holds: Vec<u32>,
    free: Vec<u32>,
}

impl Interner {
    /// The id of `text`. A new id has no hold: hold it at once, or it is never freed.
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let text: Arc<str> = text.into();
        let id = match self.free.pop() {
            Some(id) => {
                self.texts[id as usize] = Some(text.clone());
                id
            }
            None => {
                self.texts.push(Some(text.clone()));
                self.holds.push(0);
                (self.texts.len() - 1) as u32
            }
        };
        self.ids.insert(text, id);
        id
    }

    /// The id of `text`, held once more.
    pub fn hold_text(&mut self, text: &str) -> u32 {
        let id = self.id(text);
        self.hold(id);
        id
    }

    fn hold(&mut self, id: u32) {
        self.holds[id as usize] += 1;
    }

    fn release(&mut self, id: u32) {
        let holds = &mut self.holds[id as usize];
        *holds = holds.saturating_sub(1);
        if *holds == 0 {
            if let Some(text) = self.texts[id as usize].take() {
                self.ids.remove(&*text);
            }
            self.free.push(id);
        }
    }

    pub fn text(&self, id: u32) -> &str {
        self.texts[id as usize].as_deref().unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The keys of the rules of one table that partition by the same expressions: each key
/// held by every rule with rows of it. A batch's rows are looked up once for all rules.
#[derive(Debug, Default)]
pub struct Keys {
    interner: Interner,
    /// The key id of each row of the batch being evaluated, once a rule has asked.
    batch: Vec<u32>,
}

impl Keys {
    /// Before each batch the rules see.
    pub fn start_batch(&mut self, rows: usize) {
        self.batch.clear();
        self.batch.resize(rows, NO_ID);
    }

    /// The key id of the batch's row `row`; `text` makes its key's text, asked only the
    /// first time a rule wants that row. A new id has no hold ([`Windows::push`] holds it).
    pub fn of_row<'a>(&mut self, row: usize, text: impl FnOnce() -> Cow<'a, str>) -> u32 {
        match self.batch.get(row) {
            Some(&id) if id != NO_ID => id,
            _ => {
                let id = self.interner.id(&text());
                if let Some(slot) = self.batch.get_mut(row) {
                    *slot = id;
                }
                id
            }
        }
    }

    pub fn text(&self, id: u32) -> &str {
        self.interner.text(id)
    }

    /// Keys some rule holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.interner.len()
    }
}

/// One counted row's input to one aggregate.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Counted,
    Number(f64),
    /// A text counted by `count(DISTINCT …)`: its id in [`Windows::texts`].
    Text(u32),
    /// The steps of a sequence the row meets, one bit each.
    Steps(u64),
}

/// A counted row.
#[derive(Debug)]
struct Held {
    time: i64,
    /// The arrival number of the key's previous row ([`NONE`] for its first).
    prev: u64,
    key: u32,
    /// Whether the window ending at this row's time has been reported.
    fired: bool,
}

/// A rule's counted rows, in arrival order.
#[derive(Debug)]
pub struct Windows {
    rows: VecDeque<Held>,
    /// The rows' inputs to the aggregates, `width` per row.
    inputs: VecDeque<Option<Input>>,
    width: usize,
    /// The arrival number of `rows[0]`.
    first: u64,
    /// Each key with rows: the arrival number of its newest.
    heads: HashMap<u32, u64, Hasher>,
    /// The texts the rows' inputs count.
    pub texts: Interner,
}

impl Windows {
    /// Windows of rows with `width` aggregate inputs each.
    pub fn new(width: usize) -> Windows {
        Windows {
            rows: VecDeque::new(),
            inputs: VecDeque::new(),
            width,
            first: 0,
            heads: HashMap::default(),
            texts: Interner::default(),
        }
    }

    /// Adds a counted row of `key` (an id of `keys`) at `time`, with its input to each
    /// aggregate as `input(i, texts)` gives it (holding the texts it counts). Returns its
    /// arrival number.
    pub fn push(
        &mut self,
        keys: &mut Keys,
        key: u32,
        time: i64,
        mut input: impl FnMut(usize, &mut Interner) -> Option<Input>,
    ) -> u64 {
        let arrival = self.first + self.rows.len() as u64;
        let prev = match self.heads.entry(key) {
            Entry::Occupied(mut newest) => std::mem::replace(newest.get_mut(), arrival),
            Entry::Vacant(slot) => {
                slot.insert(arrival);
                keys.interner.hold(key);
                NONE
            }
        };
        self.rows.push_back(Held {
            time,
            prev,
            key,
            fired: false,
        });
        for i in 0..self.width {
            let value = input(i, &mut self.texts);
            self.inputs.push_back(value);
        }
        arrival
    }

    fn row(&self, arrival: u64) -> &Held {
        &self.rows[(arrival - self.first) as usize]
    }

    /// The rows of `key` with a time in `[from, to]`, as (time, arrival number), in that
    /// order, into `out` (cleared first).
    pub fn rows_of(&self, key: u32, from: i64, to: i64, out: &mut Vec<(i64, u64)>) {
        out.clear();
        let mut at = self.heads.get(&key).copied().unwrap_or(NONE);
        while at != NONE && at >= self.first {
            let row = self.row(at);
            if (from..=to).contains(&row.time) {
                out.push((row.time, at));
            }
            at = row.prev;
        }
        // Rows mostly arrive in time order, so the chain mostly runs newest first.
        out.reverse();
        if !out.is_sorted() {
            out.sort_unstable();
        }
    }

    /// The `i`-th aggregate's input of the row that arrived `arrival`-th.
    pub fn input(&self, arrival: u64, i: usize) -> Option<Input> {
        self.inputs[(arrival - self.first) as usize * self.width + i]
    }

    /// Whether the window ending at the time of the row that arrived `arrival`-th was
    /// reported (marked on that row or on another of the same key and time).
    pub fn fired(&self, arrival: u64) -> bool {
        self.row(arrival).fired
    }

    pub fn fire(&mut self, arrival: u64) {
        let at = (arrival - self.first) as usize;
        self.rows[at].fired = true;
    }

    /// Forgets rows, oldest arrivals first, while they are older than `from`: a row that
    /// came before newer ones waits for them. Keys left without rows are released.
    pub fn forget_before(&mut self, from: i64, keys: &mut Keys) {
        while self.rows.front().is_some_and(|r| r.time < from) {
            self.forget_first(keys);
        }
    }

    fn forget_first(&mut self, keys: &mut Keys) {
        let Some(row) = self.rows.pop_front() else {
            return;
        };
        if self.heads.get(&row.key) == Some(&self.first) {
            self.heads.remove(&row.key);
            keys.interner.release(row.key);
        }
        for input in self.inputs.drain(..self.width) {
            if let Some(Input::Text(id)) = input {
                self.texts.release(id);
            }
        }
        self.first += 1;
    }

    /// Forgets every row (the rule is dropped or replaced).
    pub fn clear(&mut self, keys: &mut Keys) {
        while !self.rows.is_empty() {
            self.forget_first(keys);
        }
    }

    /// Keys with rows.
    pub fn keys(&self) -> usize {
        self.heads.len()
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(w: &mut Windows, keys: &mut Keys, key: &str, time: i64) -> u64 {
        keys.start_batch(1);
        let id = keys.of_row(0, || key.into());
        w.push(keys, id, time, |_, _| Some(Input::Number(time as f64)))
    }

    #[test]
    fn rows_of_a_key_come_in_time_order_and_leave_with_their_keys() {
        let (mut w, mut keys) = (Windows::new(1), Keys::default());
        push(&mut w, &mut keys, "a", 10);
        push(&mut w, &mut keys, "b", 11);
        let late = push(&mut w, &mut keys, "a", 5);
        push(&mut w, &mut keys, "a", 20);
        assert_eq!(keys.len(), 2);
        let mut out = Vec::new();
        let a = keys.interner.id("a");
        w.rows_of(a, 0, 100, &mut out);
        assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), [5, 10, 20]);
        w.rows_of(a, 6, 19, &mut out);
        assert_eq!(out, [(10, 0)]);
        assert!(matches!(w.input(late, 0), Some(Input::Number(n)) if n == 5.0));
        // The first goes; the late row (5) waits behind b's, which is newer.
        w.forget_before(11, &mut keys);
        assert_eq!((w.rows(), w.keys()), (3, 2));
        w.rows_of(a, 0, 100, &mut out);
        assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), [5, 20]);
        w.forget_before(12, &mut keys);
        assert_eq!(w.rows(), 1);
        assert_eq!((w.keys(), keys.len()), (1, 1), "b has no rows left");
        // A new key takes the freed id; a's rows are still a's.
        let c = push(&mut w, &mut keys, "c", 30);
        assert_eq!(keys.text(w.row(c).key), "c");
        w.rows_of(a, 0, 100, &mut out);
        assert_eq!(out, [(20, 3)]);
        w.clear(&mut keys);
        assert_eq!((w.rows(), w.keys(), keys.len()), (0, 0, 0));
    }

    #[test]
    fn keys_are_shared_and_freed_when_no_rule_holds_them() {
        let mut keys = Keys::default();
        let (mut one, mut two) = (Windows::new(0), Windows::new(0));
        keys.start_batch(2);
        let k = keys.of_row(1, || "k".into());
        assert_eq!(
            keys.of_row(1, || unreachable!("looked up once per batch")),
            k
        );
        one.push(&mut keys, k, 1, |_, _| None);
        two.push(&mut keys, k, 1, |_, _| None);
        one.clear(&mut keys);
        assert_eq!(keys.len(), 1, "the second rule still holds it");
        two.clear(&mut keys);
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn counted_texts_live_as_long_as_their_rows() {
        let (mut w, mut keys) = (Windows::new(1), Keys::default());
        for time in [1, 2] {
            keys.start_batch(1);
            let k = keys.of_row(0, || "k".into());
            w.push(&mut keys, k, time, |_, texts| {
                Some(Input::Text(texts.hold_text("x")))
            });
        }
        assert_eq!(w.texts.len(), 1);
        w.forget_before(2, &mut keys);
        assert_eq!(w.texts.len(), 1);
        w.forget_before(3, &mut keys);
        assert_eq!(w.texts.len(), 0);
    }
}
