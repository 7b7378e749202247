//! A small per-process memory of recent answers: a map whose entries are
//! trusted for a fixed time, bounded in size. The callers decide what makes
//! an entry still true (claims matching, a generation unchanged); this only
//! keeps entries and forgets old ones.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries kept for at most `ttl`; when `max` entries are held the memory
/// starts afresh, which bounds it without bookkeeping per entry.
#[derive(Debug)]
pub struct Memo<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    /// The value kept for `key` if it is younger than the time to live and
    /// `still_true` accepts it.
    pub fn get<Q>(&self, key: &Q, still_true: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let (value, since) = entries.get(key)?;
        (since.elapsed() < self.ttl && still_true(value)).then(|| value.clone())
    }

    /// Keeps `value` for `key` from now.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_kept_until_it_expires_or_is_no_longer_true() {
        let memo = Memo::new(Duration::from_secs(60), 10);
        memo.put("a", 1);
        assert_eq!(memo.get("a", |_| true), Some(1));
        assert_eq!(memo.get("a", |v| *v == 2), None);
        assert_eq!(memo.get("b", |_| true), None);

        let expired = Memo::new(Duration::ZERO, 10);
        expired.put("a", 1);
        assert_eq!(expired.get("a", |_| true), None);
    }

    #[test]
    fn a_full_memory_starts_afresh() {
        let memo = Memo::new(Duration::from_secs(60), 2);
        memo.put(1, 1);
        memo.put(2, 2);
        memo.put(3, 3);
        assert_eq!(memo.get(&1, |_| true), None);
        assert_eq!(memo.get(&3, |_| true), Some(3));
    }
}
