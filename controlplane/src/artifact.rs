//! Files to write on a host, and files already there.

use std::collections::BTreeMap;
use std::fmt;

/// A file to write on a host. `secret` marks private keys and tokens: callers must
/// never print or log `content` when it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Absolute path on the host.
    pub path: String,
    /// Exact bytes of the file.
    pub content: Vec<u8>,
    /// Unix permission bits (0o600, 0o644). Parent directories are 0o755.
    pub mode: u32,
    /// True for private keys, kubeconfigs with keys and tokens.
    pub secret: bool,
}

impl Artifact {
    pub(crate) fn public(path: impl Into<String>, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        Artifact {
            path: path.into(),
            content: content.into(),
            mode,
            secret: false,
        }
    }

    pub(crate) fn secret(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Artifact {
            path: path.into(),
            content: content.into(),
            mode: 0o600,
            secret: true,
        }
    }
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Artifact");
        d.field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode));
        if self.secret {
            d.field(
                "content",
                &format_args!("<{} secret bytes>", self.content.len()),
            );
        } else {
            d.field("content", &String::from_utf8_lossy(&self.content));
        }
        d.field("secret", &self.secret).finish()
    }
}

/// Files already on the host (path -> bytes), e.g. read back over SSH.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Existing(pub BTreeMap<String, Vec<u8>>);

impl Existing {
    /// Nothing on the host yet.
    pub fn empty() -> Self {
        Existing::default()
    }

    /// What a previous computation wrote: feeding it back keeps every file.
    pub fn from_artifacts(artifacts: &[Artifact]) -> Self {
        Existing(
            artifacts
                .iter()
                .map(|a| (a.path.clone(), a.content.clone()))
                .collect(),
        )
    }

    /// The bytes at `path`, if present.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.0.get(path).map(Vec::as_slice)
    }
}

impl fmt::Debug for Existing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only paths: the contents may hold private keys.
        f.debug_list().entries(self.0.keys()).finish()
    }
}
