//! Reading a remote command's output as it comes: each stdout line is shown to the caller
//! at once (so the records a script writes while it runs are seen while it runs), and all
//! of stdout and stderr is returned at the end.

use openssh::RemoteChild;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// What a line watcher is called with: one stdout line, newline included.
pub type LineWatcher<'a> = &'a (dyn Fn(&[u8]) + Send + Sync);

/// Waits for `child` to exit, calling `on_line` for each stdout line as it arrives;
/// returns the exit status with the whole of stdout and stderr.
pub(super) async fn collect(
    mut child: RemoteChild<'_>,
    on_line: LineWatcher<'_>,
) -> Result<std::process::Output, openssh::Error> {
    child.stdin().take();
    let stdout = child.stdout().take();
    let stderr = child.stderr().take();
    let (stdout, stderr) = read_both(stdout, stderr, on_line)
        .await
        .map_err(openssh::Error::ChildIo)?;
    let status = child.wait().await?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads both streams to their end at the same time (neither can fill its pipe and stall
/// the other), showing `on_line` each stdout line as soon as it is complete.
pub(super) async fn read_both<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    on_line: LineWatcher<'_>,
) -> std::io::Result<(Vec<u8>, Vec<u8>)>
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let stdout_read = async move {
        let mut all = Vec::new();
        if let Some(stdout) = stdout {
            let mut reader = BufReader::new(stdout);
            loop {
                let start = all.len();
                if reader.read_until(b'\n', &mut all).await? == 0 {
                    break;
                }
                on_line(&all[start..]);
            }
        }
        Ok::<_, std::io::Error>(all)
    };
    let stderr_read = async move {
        let mut all = Vec::new();
        if let Some(mut stderr) = stderr {
            stderr.read_to_end(&mut all).await?;
        }
        Ok::<_, std::io::Error>(all)
    };
    tokio::try_join!(stdout_read, stderr_read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn lines_are_seen_while_the_command_still_runs() {
        let (mut out_writer, out_reader) = tokio::io::duplex(64);
        let (mut err_writer, err_reader) = tokio::io::duplex(64);
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let watch = move |line: &[u8]| {
            let _ = seen_tx.send(line.to_vec());
        };
        let remote = async move {
            out_writer.write_all(b"KP\t1\tbegin\t\t\n").await.unwrap();
            // The first line reaches the watcher before anything more is written.
            let first = tokio::time::timeout(std::time::Duration::from_secs(5), seen.recv())
                .await
                .expect("the first line is seen while the command runs");
            assert_eq!(first.as_deref(), Some(&b"KP\t1\tbegin\t\t\n"[..]));
            err_writer.write_all(b"noise\n").await.unwrap();
            out_writer
                .write_all(b"KP\t1\tend\t\t0\nlast")
                .await
                .unwrap();
            drop((out_writer, err_writer));
            seen
        };
        let (read, mut seen) = tokio::join!(
            read_both(Some(out_reader), Some(err_reader), &watch),
            remote
        );
        let (stdout, stderr) = read.unwrap();
        assert_eq!(stdout, b"KP\t1\tbegin\t\t\nKP\t1\tend\t\t0\nlast");
        assert_eq!(stderr, b"noise\n");
        assert_eq!(
            seen.recv().await.as_deref(),
            Some(&b"KP\t1\tend\t\t0\n"[..])
        );
        assert_eq!(seen.recv().await.as_deref(), Some(&b"last"[..]));
    }
}
