//! Users from an htpasswd file of bcrypt entries (`htpasswd -B`). The
//! file is checked for changes at most once a second and re-read when its
//! modification time or size moved; a file that no longer reads keeps the
//! previous users (and says why in the log). Other hash kinds (MD5, SHA1,
//! crypt, plain) are refused: at startup as an error, on reload as a warning.

use super::AuthError;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const RECHECK: Duration = Duration::from_secs(1);
/// Verified credentials remembered (as hashes) so that a client sending
/// Basic on every request does not pay bcrypt every time; cleared on reload.
const VERIFIED_CAP: usize = 4096;

pub struct Users {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    checked: Instant,
    stamp: Option<(SystemTime, u64)>,
    table: Arc<Table>,
    verified: HashSet<[u8; 32]>,
}

struct Table {
    hashes: HashMap<String, String>,
    /// A hash at the highest cost in the file, checked when the user is
    /// unknown so that an unknown name takes at least as long as any known
    /// user's wrong password (a decoy at a lower cost would tell names apart).
    decoy: String,
}

impl Users {
    /// Reads `path`; any non-bcrypt entry is an error.
    pub fn open(path: &Path) -> Result<Users, AuthError> {
        let (table, stamp) = read(path)?;
        Ok(Users {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                checked: Instant::now(),
                stamp,
                table: Arc::new(table),
                verified: HashSet::new(),
            }),
        })
    }

    /// Whether `user` exists (re-reading the file if it changed).
    pub fn exists(&self, user: &str) -> bool {
        self.current().hashes.contains_key(user)
    }

    /// Checks a user's password. bcrypt runs on the blocking pool.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let (table, key) = self.current_with_key(user, password);
        if self.lock().verified.contains(&key) {
            return true;
        }
        let hash = table.hashes.get(user).cloned();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| table.decoy.clone());
        let password = password.to_string();
        let matched = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = known && matched;
        if ok {
            let mut state = self.lock();
            if state.verified.len() >= VERIFIED_CAP {
                state.verified.clear();
            }
            state.verified.insert(key);
        }
        ok
    }

    fn current_with_key(&self, user: &str, password: &str) -> (Arc<Table>, [u8; 32]) {
        let mut hasher = Sha256::new();
        hasher.update(user.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        (self.current(), hasher.finalize().into())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The table, re-read first when the file changed.
    fn current(&self) -> Arc<Table> {
        let mut state = self.lock();
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let now = stamp_of(&self.path);
            if now != state.stamp {
                match read(&self.path) {
                    Ok((table, stamp)) => {
                        tracing::info!(path = %self.path.display(), users = table.hashes.len(), "htpasswd file re-read");
                        state.table = Arc::new(table);
                        state.stamp = stamp;
                        state.verified.clear();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "htpasswd file changed but cannot be used; keeping the previous users");
                        state.stamp = now;
                    }
                }
            }
        }
        state.table.clone()
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> Result<(Table, Option<(SystemTime, u64)>), AuthError> {
    let stamp = stamp_of(path);
    let text = std::fs::read_to_string(path).map_err(|e| AuthError::Htpasswd {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let table = parse(&text).map_err(|message| AuthError::Htpasswd {
        path: path.to_path_buf(),
        message,
    })?;
    Ok((table, stamp))
}

fn parse(text: &str) -> Result<Table, String> {
    let mut hashes = HashMap::new();
    let mut cost = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {}: expected user:hash", i + 1));
        };
        if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            let kind = if hash.starts_with("$apr1$") {
                "MD5 ($apr1$)"
            } else if hash.starts_with("{SHA}") {
                "SHA1 ({SHA})"
            } else {
                "crypt or plain text"
            };
            return Err(format!(
                "line {}: user {user:?} has a {kind} entry; only bcrypt is accepted (make it with htpasswd -B)",
                i + 1
            ));
        }
        let parsed: bcrypt::HashParts = hash
            .parse()
            .map_err(|e| format!("line {}: user {user:?}: bad bcrypt entry: {e}", i + 1))?;
        cost = cost.max(Some(parsed.get_cost()));
        hashes.insert(user.to_string(), hash.to_string());
    }
    let decoy = bcrypt::hash_with_salt(b"decoy", cost.unwrap_or(bcrypt::DEFAULT_COST), [7u8; 16])
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| e.to_string())?;
    Ok(Table { hashes, decoy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_hash_kinds() {
        let err = parse("alice:$apr1$abc$def\n").err().unwrap();
        assert!(err.contains("MD5") && err.contains("htpasswd -B"), "{err}");
        let err = parse("alice:{SHA}abc\n").err().unwrap();
        assert!(err.contains("SHA1"), "{err}");
        let err = parse("alice:secret\n").err().unwrap();
        assert!(err.contains("line 1"), "{err}");
    }

    fn decoy_cost(table: &Table) -> u32 {
        let parts: bcrypt::HashParts = table.decoy.parse().unwrap();
        parts.get_cost()
    }

    /// An unknown user is checked against a decoy as slow as the slowest
    /// entry, not the first one: with a cost-4 entry first and a cost-12
    /// one second, a decoy at cost 4 answered an unknown name in 2 ms and
    /// the cost-12 user's wrong password in 250 ms.
    #[test]
    fn decoy_is_as_slow_as_the_slowest_entry() {
        let fast = bcrypt::hash("fast-pw", 4).unwrap();
        let slow = bcrypt::hash("slow-pw", 12).unwrap();
        let table = parse(&format!("fast:{fast}\nslow:{slow}\n")).unwrap();
        assert_eq!(decoy_cost(&table), 12);
        let table = parse(&format!("slow:{slow}\nfast:{fast}\n")).unwrap();
        assert_eq!(decoy_cost(&table), 12);
        assert!(
            bcrypt::verify("decoy", &table.decoy).unwrap(),
            "the decoy is a usable hash"
        );
    }

    #[tokio::test]
    async fn reload_recomputes_the_decoy_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let cost4 = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&path, format!("alice:{cost4}\n")).unwrap();
        let users = Users::open(&path).unwrap();
        assert_eq!(decoy_cost(&users.current()), 4);
        let cost6 = bcrypt::hash("pw", 6).unwrap();
        std::fs::write(&path, format!("alice:{cost4}\nbob:{cost6}\n")).unwrap();
        users.lock().checked = Instant::now() - RECHECK;
        assert_eq!(decoy_cost(&users.current()), 6);
        assert!(!users.verify("carol", "pw").await);
    }

    #[tokio::test]
    async fn verifies_and_rereads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let hash = bcrypt::hash("pw1", 4).unwrap();
        std::fs::write(&path, format!("alice:{hash}\n")).unwrap();
        let users = Users::open(&path).unwrap();
        assert!(users.verify("alice", "pw1").await);
        assert!(!users.verify("alice", "pw2").await);
        assert!(!users.verify("bob", "pw1").await);
        let hash = bcrypt::hash("pw2", 4).unwrap();
        std::fs::write(&path, format!("bob:{hash}\n# a comment\n")).unwrap();
        users.lock().checked = Instant::now() - RECHECK;
        assert!(users.verify("bob", "pw2").await);
        assert!(
            !users.verify("alice", "pw1").await,
            "removed user still accepted"
        );
    }
}
