//! Reading a remote command's output as it comes: each stdout line is shown to the caller
//! at once (so the records a script writes while it runs are seen while it runs), and all
//! of stdout and stderr is returned at the end.

use openssh::RemoteChild;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

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
    let stdout_read = async move {
        let mut all = Vec::new();
        if let Some(stdout) = stdout {
            let mut reader = BufReader::new(stdout);
            loop {
                let start = all.len();
                let n = reader
                    .read_until(b'\n', &mut all)
                    .await
                    .map_err(openssh::Error::ChildIo)?;
                if n == 0 {
                    break;
                }
                on_line(&all[start..]);
            }
        }
        Ok::<_, openssh::Error>(all)
    };
    let stderr = child.stderr().take();
    let stderr_read = async move {
        let mut all = Vec::new();
        if let Some(mut stderr) = stderr {
            stderr
                .read_to_end(&mut all)
                .await
                .map_err(openssh::Error::ChildIo)?;
        }
        Ok::<_, openssh::Error>(all)
    };
    let (stdout, stderr) = tokio::try_join!(stdout_read, stderr_read)?;
    let status = child.wait().await?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}
