//! Single-use tokens for stream URLs: each Exec/Attach/PortForward request is
//! stored under a random token that the first connection takes; unused tokens
//! expire (kubelet's request cache keeps them for one minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most requests kept waiting at once (older ones are dropped first).
const MAX_PENDING: usize = 1000;

/// A request waiting for its connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Exec {
        container_id: String,
        cmd: Vec<String>,
        opts: StdioOpts,
    },
    Attach {
        container_id: String,
        opts: StdioOpts,
    },
    PortForward {
        sandbox_id: String,
    },
}

/// Which standard streams a remote command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StdioOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The token cache.
pub struct Tokens {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, Pending)>>,
}

/// A random URL-safe token (128 bits).
fn new_token() -> String {
    use base64::Engine;
    let id = crate::util::new_id();
    let raw = hex::decode(&id[..32]).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `p` and returns its token.
    pub fn insert(&self, p: Pending) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if m.len() >= MAX_PENDING {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(token.clone(), (now, p));
        token
    }

    /// Takes the request for `token` if it exists and has not expired.
    pub fn take(&self, token: &str) -> Option<Pending> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (at, p) = m.remove(token)?;
        (at.elapsed() < self.ttl).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use_and_expire() {
        let t = Tokens::new(Duration::from_millis(50));
        let p = Pending::PortForward {
            sandbox_id: "s".into(),
        };
        let a = t.insert(p.clone());
        let b = t.insert(p.clone());
        assert_ne!(a, b);
        assert!(a.len() >= 20 && !a.contains('/'), "{a}");
        assert_eq!(t.take(&a), Some(p));
        assert_eq!(t.take(&a), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.take(&b), None);
        assert_eq!(t.take("nonsense"), None);
    }
}
