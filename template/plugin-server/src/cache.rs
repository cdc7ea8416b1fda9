//! An optional cache in front of your generator, for generators that are
//! slow or call an external API. Off by default; `PLUGIN_CACHE_TTL_SECS=30`
//! turns it on.
//!
//! Identical requests (same ApplicationSet and namespace, same parameters)
//! within the TTL
//! are answered from memory, and concurrent identical requests share one
//! generator call. Errors are never cached: the next request tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::generator::{Generator, GeneratorError};
use crate::protocol::{GetParamsRequest, ParameterMap};

type Answer = Result<Vec<ParameterMap>, GeneratorError>;

/// Wraps a generator with a time-to-live cache.
#[derive(Debug)]
pub struct Cached<G> {
    inner: G,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    created: Instant,
    answer: Arc<OnceCell<Answer>>,
}

impl<G: Generator> Cached<G> {
    pub fn new(inner: G, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The entry for `key`: the live one, or a new, empty one.
    fn entry(&self, key: &str) -> Entry {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some(entry) = entries.get(key).filter(|e| now - e.created < self.ttl) {
            return entry.clone();
        }
        // Forget expired answers now and then, so memory stays bounded.
        if entries.len() >= 1024 {
            entries.retain(|_, e| now - e.created < self.ttl);
        }
        let entry = Entry {
            created: now,
            answer: Arc::new(OnceCell::new()),
        };
        entries.insert(key.to_owned(), entry.clone());
        entry
    }

    fn forget(&self, key: &str, failed: &Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.answer, &failed.answer))
        {
            entries.remove(key);
        }
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
        if answer.is_err() {
            self.forget(&key, &entry);
        }
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
