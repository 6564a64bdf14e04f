//! Pulls run in a short-lived child process (`kprov-agent __pull`, request on
//! stdin, record on stdout): the registry client, TLS and decompression code
//! and their buffers never become part of the long-running agent's memory.

use super::{ImageError, ImageRecord, ImageStore, PullAuth, PullFailure, Puller};
use crate::config::RegistryConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The argv[1] that selects pull mode.
pub const PULL_ARG: &str = "__pull";

/// What the pull process gets on stdin (credentials never go on a command line).
#[derive(Debug, Serialize, Deserialize)]
pub struct PullRequest {
    pub image: String,
    pub auth: PullAuth,
    pub registry: RegistryConfig,
    pub store: PathBuf,
}

/// What the pull process prints on stdout when it fails: the error with its kind,
/// so the gRPC code survives the process boundary.
#[derive(Debug, Serialize, Deserialize)]
struct ChildFailure {
    reference: String,
    kind: PullFailure,
    message: String,
}

impl ChildFailure {
    fn from_error(image: &str, e: ImageError) -> Self {
        match e {
            ImageError::Pull {
                reference,
                kind,
                message,
            } => Self {
                reference,
                kind,
                message,
            },
            other => Self {
                reference: image.to_string(),
                kind: PullFailure::Other,
                message: other.to_string(),
            },
        }
    }
}

/// Runs a pull in a child process of `exe` and returns the record to index.
pub async fn pull_in_child(exe: &Path, req: &PullRequest) -> Result<ImageRecord, ImageError> {
    let perr = |message: String| ImageError::Pull {
        reference: req.image.clone(),
        kind: PullFailure::Other,
        message,
    };
    let mut child = tokio::process::Command::new(exe)
        .arg(PULL_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| perr(format!("cannot start the pull process: {e}")))?;
    let input = serde_json::to_vec(req).map_err(|e| perr(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .await
            .map_err(|e| perr(e.to_string()))?;
    }
    let mut out = Vec::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_end(&mut out)
            .await
            .map_err(|e| perr(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| perr(e.to_string()))?;
    if !output.status.success() {
        if let Ok(f) = serde_json::from_slice::<ChildFailure>(&out) {
            return Err(ImageError::Pull {
                reference: f.reference,
                kind: f.kind,
                message: f.message,
            });
        }
        let msg = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(perr(if msg.is_empty() {
            format!("pull process failed: {}", output.status)
        } else {
            msg
        }));
    }
    serde_json::from_slice(&out).map_err(|e| perr(format!("bad pull result: {e}")))
}

/// Pull mode: reads a [`PullRequest`] from stdin, fetches, prints the record.
pub fn run_pull_process() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input) {
        eprintln!("reading the pull request: {e}");
        return 2;
    }
    let req: PullRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bad pull request: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        let store = Arc::new(ImageStore::open(&req.store)?);
        Puller::new(req.registry.clone(), store)
            .fetch(&req.image, &req.auth)
            .await
    });
    match result
        .and_then(|rec| serde_json::to_string(&rec).map_err(|e| std::io::Error::other(e).into()))
    {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            if let Ok(json) = serde_json::to_string(&ChildFailure::from_error(&req.image, e)) {
                println!("{json}");
            }
            1
        }
    }
}
