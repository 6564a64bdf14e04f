//! Container logs in the CRI format: `<RFC3339Nano> <stdout|stderr> <P|F> <msg>`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits a container's output into CRI log records and appends them to a file.
pub struct CriLogWriter {
    path: PathBuf,
    file: Option<File>,
    max_line: usize,
    pending: [Vec<u8>; 2],
}

impl CriLogWriter {
    /// Opens (creating) the log at `path`; records longer than `max_line` are split.
    pub fn open(path: &Path, max_line: usize) -> std::io::Result<Self> {
        let mut w = Self {
            path: path.to_path_buf(),
            file: None,
            max_line,
            pending: [Vec::new(), Vec::new()],
        };
        w.reopen()?;
        Ok(w)
    }

    /// Closes and reopens the file (after kubelet renamed it for rotation).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        Ok(())
    }

    /// Feeds output bytes of `stream`; complete lines are written at once.
    pub fn feed(&mut self, stream: Stream, data: &[u8]) {
        let idx = stream as usize;
        self.pending[idx].extend_from_slice(data);
        loop {
            let buf = &self.pending[idx];
            if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                if nl <= self.max_line {
                    let line: Vec<u8> = self.pending[idx].drain(..=nl).collect();
                    // "\r\n" ends a line too (a terminal's), as containerd reads them.
                    let end = match line.len() {
                        n if n >= 2 && line[n - 2] == b'\r' => n - 2,
                        n => n - 1,
                    };
                    self.record(stream, true, &line[..end]);
                    continue;
                }
            }
            if self.pending[idx].len() > self.max_line {
                let part: Vec<u8> = self.pending[idx].drain(..self.max_line).collect();
                self.record(stream, false, &part);
                continue;
            }
            break;
        }
    }

    /// Writes what is left of `stream` as a final full record (the stream ended).
    pub fn finish(&mut self, stream: Stream) {
        let idx = stream as usize;
        if !self.pending[idx].is_empty() {
            let rest = std::mem::take(&mut self.pending[idx]);
            self.record(stream, true, &rest);
        }
    }

    fn record(&mut self, stream: Stream, full: bool, msg: &[u8]) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut line = Vec::with_capacity(msg.len() + 48);
        line.extend_from_slice(ts.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.name().as_bytes());
        line.extend_from_slice(if full { b" F " } else { b" P " });
        line.extend_from_slice(msg);
        line.push(b'\n');
        if let Some(f) = self.file.as_mut() {
            // A full disk must not stop the container: drop the record.
            let _ = f.write_all(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_full_partial_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c/0.log");
        let mut w = CriLogWriter::open(&p, 64).unwrap();
        w.feed(Stream::Stdout, b"hello\nwor");
        w.feed(Stream::Stderr, b"oops\n");
        w.feed(Stream::Stdout, b"ld\n");
        w.feed(Stream::Stdout, &[b'x'; 100]);
        w.finish(Stream::Stdout);
        let text = std::fs::read_to_string(&p).unwrap();
        let recs: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(4, ' ').collect()).collect();
        assert_eq!(recs[0][1..], ["stdout", "F", "hello"]);
        assert_eq!(recs[1][1..], ["stderr", "F", "oops"]);
        assert_eq!(recs[2][1..], ["stdout", "F", "world"]);
        assert_eq!(recs[3][2], "P");
        assert_eq!(recs[3][3].len(), 64);
        assert_eq!(recs[4][2], "F");
        assert_eq!(recs[4][3].len(), 36);
        assert!(chrono::DateTime::parse_from_rfc3339(recs[0][0]).is_ok());
        std::fs::rename(&p, d.path().join("c/0.log.1")).unwrap();
        w.reopen().unwrap();
        w.feed(Stream::Stdout, b"after\n");
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .ends_with(" stdout F after\n"));
        // A terminal's line ends in "\r\n": neither is in the record; a lone
        // "\r" inside a line stays.
        w.feed(Stream::Stdout, b"tty\r\na\rb\n\r\n");
        let text = std::fs::read_to_string(&p).unwrap();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        assert!(tail[2].ends_with(" stdout F tty"), "{tail:?}");
        assert!(tail[1].ends_with(" stdout F a\rb"), "{tail:?}");
        assert!(tail[0].ends_with(" stdout F "), "{tail:?}");
    }
}
