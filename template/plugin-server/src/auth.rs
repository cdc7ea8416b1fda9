//! The shared bearer token: loaded from a file, re-read when Kubernetes
//! rotates the mounted Secret, and compared in constant time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderMap};
use subtle::ConstantTimeEq;

use crate::error::PluginError;

/// The tokens currently accepted, and the file they come from.
///
/// The file holds one token per line. Normally that is one token; during a
/// rotation it holds the new and the old one, so the plugin accepts both
/// while Argo CD switches over (see `deploy/token.sh rotate`). Its `Debug`
/// shows the file and how many tokens, never a token.
pub struct TokenStore {
    path: PathBuf,
    current: RwLock<Tokens>,
    last_reference_warning: Mutex<Option<Instant>>,
    reloads: ReloadStats,
}

/// How the re-reads of the token file went, for the metrics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Re-reads that found a usable token (changed or not).
    pub succeeded: AtomicU64,
    /// Re-reads that found none (the previous token stayed).
    pub failed: AtomicU64,
    /// When a usable token was last read (the start, or a re-read), in
    /// seconds since the Unix epoch.
    pub last_success: AtomicU64,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens = self.current.read().map_or(0, |tokens| tokens.len());
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .field("tokens", &tokens)
            .finish_non_exhaustive()
    }
}

/// How often an unresolved Argo CD token reference is logged at most.
const REFERENCE_WARNING_INTERVAL: Duration = Duration::from_secs(60);

type Tokens = Vec<Box<[u8]>>;

/// Why the token file cannot be used.
#[derive(Debug)]
pub enum TokenError {
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    Empty {
        path: PathBuf,
    },
    /// A token with a byte no client can send in a header as intended.
    Unusable {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { path, error } => write!(
                f,
                "cannot read the token file {}: {error}. Mount the plugin's token Secret there \
                 or point PLUGIN_TOKEN_FILE at a file holding the token Argo CD sends",
                path.display()
            ),
            Self::Empty { path } => write!(
                f,
                "the token file {} is empty. Write the token Argo CD sends into it \
                 (an empty token would let anyone in)",
                path.display()
            ),
            Self::Unusable { path, line, reason } => write!(
                f,
                "the token on line {line} of {} {reason}: an Authorization header cannot carry \
                 it as it is. Use printable ASCII only (deploy/token.sh makes hex tokens)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// What a re-read of the token file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Rotated,
}

impl TokenStore {
    /// Reads the token file; refuses a missing, unreadable or empty one.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, TokenError> {
        let path = path.into();
        let token = read_token(&path)?;
        let reloads = ReloadStats::default();
        reloads.last_success.store(now_unix(), Ordering::Relaxed);
        Ok(Self {
            path,
            current: RwLock::new(token),
            last_reference_warning: Mutex::new(None),
            reloads,
        })
    }

    /// How the re-reads went.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub fn reloads(&self) -> &ReloadStats {
        &self.reloads
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file. On error the previous token stays in force.
    pub fn reload(&self) -> Result<Reload, TokenError> {
        let token = read_token(&self.path).inspect_err(|_| {
            self.reloads.failed.fetch_add(1, Ordering::Relaxed);
        })?;
        self.reloads.succeeded.fetch_add(1, Ordering::Relaxed);
        self.reloads
            .last_success
            .store(now_unix(), Ordering::Relaxed);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if *current == token {
            return Ok(Reload::Unchanged);
        }
        *current = token;
        Ok(Reload::Rotated)
    }

    /// Compares a presented token with every accepted one in constant time.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        // No early exit; only the length can leak, and the length of a random
        // token is no secret.
        let matched = current
            .iter()
            .fold(subtle::Choice::from(0), |matched, token| {
                matched | token.ct_eq(presented)
            });
        bool::from(matched)
    }

    /// Checks the `Authorization: Bearer <token>` header of a request.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), PluginError> {
        let presented = bearer_token(headers).ok_or(PluginError::MissingToken)?;
        if self.verify(presented) {
            return Ok(());
        }
        if let Some(reference) = presented.strip_prefix(b"$") {
            self.unresolved_reference(reference);
        }
        Err(PluginError::WrongToken)
    }

    /// When the Secret its ConfigMap names lacks the key, Argo CD sends `$`
    /// and the key itself as the token (`Bearer $token`). Says so, once a
    /// minute at most, echoing the key only when it is shaped like a Secret
    /// key name (anything else a client sends is not logged).
    fn unresolved_reference(&self, key: &[u8]) {
        let now = Instant::now();
        let mut last = self
            .last_reference_warning
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < REFERENCE_WARNING_INTERVAL) {
            return;
        }
        *last = Some(now);
        let secret_key = !key.is_empty()
            && key.len() <= 253
            && key
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let key = if secret_key {
            String::from_utf8_lossy(key).into_owned()
        } else {
            "<key>".to_owned()
        };
        log::warn!(
            "a client presented the token ${key}: Argo CD sends that when the Secret its plugin \
             ConfigMap names (token: $<secret>:{key}) exists in Argo CD's namespace but has no key \
             {key}. Add the key to that Secret with the token this plugin reads \
             (deploy/token.sh create does)"
        );
    }

    /// Re-reads the token file every `interval` on a background thread, so a
    /// rotated Secret takes effect without a restart. The thread holds the
    /// store weakly: it ends once the store is dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("token-reload".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(store) = weak.upgrade() else {
                        return;
                    };
                    match store.reload() {
                        Ok(Reload::Rotated) => {
                            log::info!("token rotated: re-read {}", store.path.display())
                        }
                        Ok(Reload::Unchanged) => {}
                        Err(error) => log::error!("{error}; keeping the previous token"),
                    }
                }
            })
            .expect("spawning the token reload thread")
    }
}

fn read_token(path: &Path) -> Result<Tokens, TokenError> {
    let bytes = std::fs::read(path).map_err(|error| TokenError::Unreadable {
        path: path.to_owned(),
        error,
    })?;
    let mut tokens = Tokens::new();
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        // Spaces, tabs and a CR around a token are editors' leftovers.
        let token = line.trim_ascii();
        if token.is_empty() {
            continue;
        }
        let reason = if token.iter().any(|b| !b.is_ascii()) {
            Some("holds a non-ASCII character")
        } else if token.iter().any(u8::is_ascii_control) {
            Some("holds a control character")
        } else if token.iter().any(u8::is_ascii_whitespace) {
            Some("holds white space")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(TokenError::Unusable {
                path: path.to_owned(),
                line: index + 1,
                reason,
            });
        }
        tokens.push(Box::from(token));
    }
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tokens)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn store_with(test: &str, content: &str) -> (TokenStore, PathBuf) {
        let path = std::env::temp_dir().join(format!("plugin-{test}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        (TokenStore::load(&path).unwrap(), path)
    }

    /// Every re-read is counted, and a good one dates the token.
    #[test]
    fn reloads_are_counted_by_result() {
        let (store, path) = store_with("counted", "a-token-0123456789\n");
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let loaded = count(&store.reloads().last_success);
        assert!(loaded > 0 && loaded <= now_unix());
        store.reload().unwrap();
        std::fs::write(&path, "").unwrap();
        store.reload().unwrap_err();
        std::fs::remove_file(&path).unwrap();
        store.reload().unwrap_err();
        let reloads = store.reloads();
        assert_eq!((count(&reloads.succeeded), count(&reloads.failed)), (1, 2));
    }

    #[test]
    fn debug_shows_no_token() {
        let (store, path) = store_with("debug", "first-s3cret\nsecond-s3cret\n");
        let shown = format!("{store:?} {store:#?}");
        // Neither as text nor as the bytes a derived Debug would list.
        let bytes = format!("{:?}", b"s3cret");
        let bytes = bytes.trim_matches(['[', ']']);
        assert!(
            !shown.contains("s3cret") && !shown.contains(bytes),
            "{shown}"
        );
        assert!(shown.contains(&path.display().to_string()) && shown.contains("tokens: 2"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn the_reload_thread_ends_with_its_store() {
        let (store, path) = store_with("reload-thread", "s3cret\n");
        let store = Arc::new(store);
        let thread = store.watch(Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!thread.is_finished());
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(thread.is_finished(), "the reload thread outlived its store");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn trims_whitespace_and_compares_exactly() {
        let (store, path) = store_with("trim", "  s3cret\n");
        assert!(store.verify(b"s3cret"));
        assert!(!store.verify(b"s3cre"));
        assert!(!store.verify(b"s3cret2"));
        assert!(!store.verify(b""));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refuses_missing_and_empty_files() {
        let missing = TokenStore::load("/nonexistent/token").unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/token"));
        let path = std::env::temp_dir().join(format!("plugin-auth-empty-{}", std::process::id()));
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            TokenStore::load(&path),
            Err(TokenError::Empty { .. })
        ));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn reload_keeps_the_old_token_when_the_new_one_is_empty() {
        let (store, path) = store_with("reload", "first-token");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(store.reload().unwrap(), Reload::Rotated);
        assert!(store.verify(b"second") && !store.verify(b"first-token"));
        std::fs::write(&path, "").unwrap();
        assert!(store.reload().is_err());
        assert!(store.verify(b"second"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refuses_tokens_no_header_can_carry_as_intended() {
        let dir = std::env::temp_dir().join(format!("plugin-auth-unusable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (content, line, reason) in [
            ("\u{a0}\n", 1, "non-ASCII"),
            ("\x0b\x0c", 1, "control"),
            ("good-token\n\nbad\x07token\n", 3, "control"),
            ("två-token", 1, "non-ASCII"),
            ("two words", 1, "white space"),
        ] {
            let path = dir.join("token");
            std::fs::write(&path, content).unwrap();
            let error = TokenStore::load(&path).unwrap_err().to_string();
            assert!(error.contains(reason), "{content:?}: {error}");
            assert!(
                error.contains(&format!("line {line} ")),
                "{content:?}: {error}"
            );
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn accepts_every_token_of_a_rotation() {
        let (store, path) = store_with("rotation", "new-token\n\n  old-token \n");
        assert!(store.verify(b"new-token") && store.verify(b"old-token"));
        assert!(!store.verify(b"new-token\nold-token") && !store.verify(b""));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn parses_the_bearer_header() {
        let (store, path) = store_with("bearer", "abc-token");
        let with = |value: &str| {
            let request = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            store.authorize(request.headers())
        };
        assert!(with("Bearer abc-token").is_ok());
        assert!(with("bearer abc-token").is_ok());
        assert!(matches!(with("Bearer wrong"), Err(PluginError::WrongToken)));
        for malformed in ["abc-token", "Basic abc-token", "Bearer ", "Bearer"] {
            assert!(
                matches!(with(malformed), Err(PluginError::MissingToken)),
                "{malformed}"
            );
        }
        let none = TestRequest::default().to_http_request();
        assert!(matches!(
            store.authorize(none.headers()),
            Err(PluginError::MissingToken)
        ));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_token_listed_twice_is_still_accepted() {
        // A rotation by hand may leave the same token on two lines.
        let (store, path) = store_with("twice", "same-token\nsame-token\n");
        assert!(store.verify(b"same-token"));
        assert!(!store.verify(b"other-token"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn accepts_exactly_the_token_among_arbitrary_bytes() {
        use proptest::prelude::*;
        let (store, path) = store_with("arbitrary", "s3cret-token\n");
        proptest::test_runner::TestRunner::default()
            .run(&prop::collection::vec(any::<u8>(), 0..40), |presented| {
                prop_assert_eq!(store.verify(&presented), presented == b"s3cret-token");
                prop_assert!(store.verify(b"s3cret-token"));
                Ok(())
            })
            .unwrap();
        std::fs::remove_file(path).unwrap();
    }
}
