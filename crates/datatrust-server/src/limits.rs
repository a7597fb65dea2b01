//! Token buckets by key (a source address, a principal): what one party may do per unit of
//! time, with a burst it may save up. The table forgets keys whose bucket has refilled, so
//! its size is bounded by the parties active within one refill time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets of `burst` tokens refilled at `per_second`, one per key.
pub struct TokenBuckets<K> {
    per_second: f64,
    burst: f64,
    /// Past this many keys, full buckets are forgotten before a new key is added.
    sweep_above: usize,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Copy> TokenBuckets<K> {
    pub fn new(per_second: f64, burst: f64, sweep_above: usize) -> TokenBuckets<K> {
        TokenBuckets {
            per_second,
            burst,
            sweep_above,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// True if `key` may act now (a token is taken), false if its bucket is empty.
    pub fn take(&self, key: K) -> bool {
        self.take_at(key, Instant::now())
    }

    /// True if `key` has a token left now, without taking it.
    pub fn has_token(&self, key: K) -> bool {
        let now = Instant::now();
        let buckets = self.buckets.lock().expect("token buckets poisoned");
        buckets.get(&key).is_none_or(|(left, at)| {
            (left + now.duration_since(*at).as_secs_f64() * self.per_second) >= 1.0
        })
    }

    fn take_at(&self, key: K, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().expect("token buckets poisoned");
        if buckets.len() > self.sweep_above {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (left, at)| {
                *left + now.duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (left, at) = buckets.entry(key).or_insert((self.burst, now));
        *left = (*left + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *left < 1.0 {
            return false;
        }
        *left -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_keys_apart() {
        let buckets = TokenBuckets::new(2.0, 3.0, 10);
        let start = Instant::now();
        assert!((0..3).all(|_| buckets.take_at(1, start)));
        assert!(!buckets.take_at(1, start), "the burst is spent");
        assert!(buckets.take_at(2, start), "another key has its own");
        assert!(
            buckets.take_at(1, start + Duration::from_millis(500)),
            "refilled one"
        );
        assert!(!buckets.take_at(1, start + Duration::from_millis(500)));
    }
}
