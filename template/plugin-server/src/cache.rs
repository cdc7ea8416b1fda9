//! An optional cache in front of your generator, for generators that are
//! slow or call an external API. Off by default; `PLUGIN_CACHE_TTL_SECS=30`
//! turns it on.
//!
//! Identical requests (same ApplicationSet and namespace, same parameters)
//! within the TTL
//! are answered from memory, and concurrent identical requests share one
//! generator call. Errors are never cached: the next request tries again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::generator::{Generator, GeneratorError};
use crate::protocol::{GetParamsRequest, ParameterMap};

type Answer = Result<Vec<ParameterMap>, GeneratorError>;

/// The most answers kept at once.
pub const MAX_ENTRIES: usize = 1024;
/// The most bytes of answers (as JSON, with their keys) kept at once; an
/// answer larger than a quarter of it is not kept at all.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Wraps a generator with a time-to-live cache, bounded in entries and bytes.
#[derive(Debug)]
pub struct Cached<G> {
    inner: G,
    ttl: Duration,
    state: Mutex<State>,
    stats: Arc<CacheStats>,
}

/// How requests met the cache, for the metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Answered from memory.
    pub hits: AtomicU64,
    /// Called the generator.
    pub misses: AtomicU64,
    /// Waited for an identical request's generator call.
    pub coalesced: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// The sum of the entries' `bytes`.
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    created: Instant,
    answer: Arc<OnceCell<Answer>>,
    /// Counted once the answer is in.
    bytes: usize,
}

impl State {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.bytes;
        }
    }

    /// Removes the oldest entry other than `keep`.
    fn evict_oldest(&mut self, keep: &str) -> bool {
        let oldest = self
            .entries
            .iter()
            .filter(|(key, _)| key.as_str() != keep)
            .min_by_key(|(_, entry)| entry.created)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => {
                self.remove(&key);
                true
            }
            None => false,
        }
    }
}

impl<G: Generator> Cached<G> {
    pub fn new(inner: G, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            state: Mutex::new(State::default()),
            stats: Arc::default(),
        }
    }

    /// How requests met this cache.
    pub fn stats(&self) -> Arc<CacheStats> {
        Arc::clone(&self.stats)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key`: the live one, or a new, empty one; counted as
    /// a hit, a wait for an identical call, or a miss.
    fn entry(&self, key: &str) -> Entry {
        let mut state = self.state();
        let now = Instant::now();
        if let Some(entry) = state
            .entries
            .get(key)
            .filter(|e| now - e.created < self.ttl)
        {
            let counter = if entry.answer.initialized() {
                &self.stats.hits
            } else {
                &self.stats.coalesced
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return entry.clone();
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        state.remove(key);
        if state.entries.len() >= MAX_ENTRIES {
            let expired: Vec<String> = state
                .entries
                .iter()
                .filter(|(_, e)| now - e.created >= self.ttl)
                .map(|(key, _)| key.clone())
                .collect();
            for key in expired {
                state.remove(&key);
            }
        }
        while state.entries.len() >= MAX_ENTRIES && state.evict_oldest(key) {}
        let entry = Entry {
            created: now,
            answer: Arc::new(OnceCell::new()),
            bytes: 0,
        };
        state.entries.insert(key.to_owned(), entry.clone());
        entry
    }

    /// Counts a finished entry's bytes, or forgets it (errors, answers too
    /// large to keep), and evicts the oldest entries while over budget.
    fn settle(&self, key: &str, settled: &Entry, answer: &Answer) {
        let bytes = match answer {
            Ok(sets) => serde_json::to_vec(sets).map_or(usize::MAX, |json| json.len() + key.len()),
            Err(_) => usize::MAX,
        };
        let mut state = self.state();
        let current = state
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.answer, &settled.answer) && e.bytes == 0);
        if !current {
            return;
        }
        if bytes > MAX_BYTES / 4 {
            state.remove(key);
            return;
        }
        if let Some(entry) = state.entries.get_mut(key) {
            entry.bytes = bytes;
        }
        state.bytes += bytes;
        while state.bytes > MAX_BYTES && state.evict_oldest(key) {}
    }

    /// How many answers and bytes are kept.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let state = self.state();
        (state.entries.len(), state.bytes)
    }
}

impl<G: Generator> Generator for Cached<G> {
    async fn generate(&self, request: GetParamsRequest) -> Answer {
        // Parameters are a sorted map, so equal requests give equal keys; a
        // JSON array keeps the parts apart whatever they contain.
        let key = serde_json::to_string(&(
            &request.application_set_namespace,
            &request.application_set_name,
            &request.input.parameters,
        ))
        .map_err(|e| GeneratorError::failed(e.to_string()))?;
        let entry = self.entry(&key);
        let answer = entry
            .answer
            .get_or_init(|| self.inner.generate(request))
            .await
            .clone();
        self.settle(&key, &entry, &answer);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its calls; fails when asked for `fail`.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Generator for Counting {
        async fn generate(&self, request: GetParamsRequest) -> Answer {
            self.0.fetch_add(1, Ordering::SeqCst);
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            if request.input.parameters.contains_key("fail") {
                return Err(GeneratorError::failed("upstream down"));
            }
            Ok(vec![request.input.parameters])
        }
    }

    fn request(name: &str, parameters: serde_json::Value) -> GetParamsRequest {
        serde_json::from_value(
            json!({"applicationSetName": name, "input": {"parameters": parameters}}),
        )
        .unwrap()
    }

    fn in_namespace(namespace: &str) -> GetParamsRequest {
        GetParamsRequest {
            application_set_namespace: Some(namespace.into()),
            ..request("a", json!({}))
        }
    }

    fn calls(cache: &Cached<Counting>) -> usize {
        cache.inner.0.load(Ordering::SeqCst)
    }

    #[test]
    fn identical_requests_within_the_ttl_call_the_generator_once() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Counting::default(), Duration::from_secs(60));
            let a = cache.generate(request("a", json!({"x": 1, "y": 2}))).await;
            let b = cache.generate(request("a", json!({"y": 2, "x": 1}))).await;
            assert_eq!(a.unwrap(), b.unwrap());
            assert_eq!(calls(&cache), 1);
            cache
                .generate(request("other", json!({"x": 1, "y": 2})))
                .await
                .unwrap();
            cache.generate(request("a", json!({"x": 2}))).await.unwrap();
            assert_eq!(calls(&cache), 3);
        });
    }

    /// Each request is a miss (the generator is called), a hit (answered
    /// from memory) or coalesced (it waited for an identical call).
    #[test]
    fn requests_are_counted_as_hits_misses_or_coalesced() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Counting::default(), Duration::from_secs(60));
            let slow = request("a", json!({}));
            let (first, second) = futures_util::future::join(
                cache.generate(slow.clone()),
                cache.generate(slow.clone()),
            )
            .await;
            assert!(first.is_ok() && second.is_ok());
            cache.generate(slow).await.unwrap();
            let stats = cache.stats();
            let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            assert_eq!(
                (
                    count(&stats.misses),
                    count(&stats.coalesced),
                    count(&stats.hits)
                ),
                (1, 1, 1)
            );
        });
    }

    #[test]
    fn the_same_name_in_another_namespace_is_another_entry() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Counting::default(), Duration::from_secs(60));
            cache.generate(in_namespace("team-a")).await.unwrap();
            cache.generate(in_namespace("team-b")).await.unwrap();
            cache.generate(request("a", json!({}))).await.unwrap();
            cache.generate(in_namespace("team-a")).await.unwrap();
            assert_eq!(calls(&cache), 3);
        });
    }

    #[test]
    fn answers_expire_after_the_ttl() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Counting::default(), Duration::from_millis(100));
            cache.generate(request("a", json!({}))).await.unwrap();
            actix_web::rt::time::sleep(Duration::from_millis(150)).await;
            cache.generate(request("a", json!({}))).await.unwrap();
            assert_eq!(calls(&cache), 2);
        });
    }

    #[test]
    fn concurrent_identical_requests_share_one_call() {
        actix_web::rt::System::new().block_on(async {
            let cache = Arc::new(Cached::new(Counting::default(), Duration::from_secs(60)));
            let tasks: Vec<_> = (0..5)
                .map(|_| {
                    let cache = Arc::clone(&cache);
                    actix_web::rt::spawn(
                        async move { cache.generate(request("a", json!({}))).await },
                    )
                })
                .collect();
            for task in tasks {
                assert!(task.await.unwrap().is_ok());
            }
            assert_eq!(calls(&cache), 1);
        });
    }

    #[test]
    fn the_cache_holds_at_most_max_entries() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Echo, Duration::from_secs(600));
            for i in 0..MAX_ENTRIES + 50 {
                cache
                    .generate(request(&format!("set-{i}"), json!({})))
                    .await
                    .unwrap();
            }
            let (entries, bytes) = cache.usage();
            assert_eq!(entries, MAX_ENTRIES);
            assert!(bytes > 0 && bytes <= MAX_BYTES);
        });
    }

    #[test]
    fn the_cache_holds_at_most_max_bytes() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Echo, Duration::from_secs(600));
            // Answers of about 1 MiB each: the budget keeps 16 of them.
            let big = "x".repeat(1024 * 1024);
            for i in 0..40 {
                cache
                    .generate(request(&format!("big-{i}"), json!({"pad": big})))
                    .await
                    .unwrap();
                assert!(cache.usage().1 <= MAX_BYTES);
            }
            assert!(cache.usage().0 < 20);
            // Larger than a quarter of the budget: answered, not kept.
            let huge = "x".repeat(MAX_BYTES / 4 + 1);
            let before = cache.usage();
            cache
                .generate(request("huge", json!({"pad": huge})))
                .await
                .unwrap();
            assert_eq!(cache.usage(), before);
        });
    }

    /// Answers at once with its parameters.
    struct Echo;

    impl Generator for Echo {
        async fn generate(&self, request: GetParamsRequest) -> Answer {
            Ok(vec![request.input.parameters])
        }
    }

    #[test]
    fn errors_are_not_cached() {
        actix_web::rt::System::new().block_on(async {
            let cache = Cached::new(Counting::default(), Duration::from_secs(60));
            for _ in 0..2 {
                let error = cache
                    .generate(request("a", json!({"fail": true})))
                    .await
                    .unwrap_err();
                assert_eq!(error.message(), "upstream down");
            }
            assert_eq!(calls(&cache), 2);
        });
    }
}
