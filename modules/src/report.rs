//! Reading a script's records back: one [`TaskReport`] per task.

use std::collections::BTreeMap;

use crate::script::unb64;
use crate::{ModuleError, State};

/// What one task's fragment reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskReport {
    /// Fields printed with `kp_field`/`kp_word`/`kp_field_file`, decoded.
    pub fields: BTreeMap<String, Vec<u8>>,
    /// The fragment changed something (`kp_changed`).
    pub changed: bool,
    /// Why the task failed: the `kp_fail` message, a non-zero status, or an unfinished task.
    pub failed: Option<String>,
    /// The host changed between gather and apply (`kp_stale`): gather again, then retry.
    pub stale: Option<String>,
    /// The fragment's exit status, when it finished.
    pub status: Option<i32>,
}

impl TaskReport {
    /// The gathered state, for [`crate::Module::plan`].
    pub fn state(&self) -> State {
        State {
            fields: self.fields.clone(),
        }
    }

    /// True when the task finished without failing or going stale.
    pub fn ok(&self) -> bool {
        self.failed.is_none() && self.stale.is_none()
    }
}

/// Parses a script's stdout into one report per task id. Lines that are not records are
/// ignored; a task that began but never ended is reported failed.
pub fn parse_output(stdout: &[u8]) -> Result<BTreeMap<usize, TaskReport>, ModuleError> {
    let mut reports: BTreeMap<usize, TaskReport> = BTreeMap::new();
    let mut ended: BTreeMap<usize, bool> = BTreeMap::new();
    for (index, raw) in stdout.split(|b| *b == b'\n').enumerate() {
        let line_no = index + 1;
        let Some(rest) = raw.strip_prefix(b"KP\t") else {
            continue;
        };
        let bad = |message: &str| ModuleError::Output {
            line: line_no,
            message: message.to_string(),
        };
        let line = std::str::from_utf8(rest).map_err(|_| bad("record is not UTF-8"))?;
        let mut parts = line.splitn(4, '\t');
        let (Some(id), Some(kind), Some(name), Some(value)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("record has fewer than 5 tab-separated parts"));
        };
        if kind == "blob" {
            split_blob(
                &mut reports,
                name,
                &decode_blob(value).map_err(|e| bad(&e))?,
            );
            continue;
        }
        let Ok(id) = id.parse::<usize>() else {
            // Records printed outside any task (id `-`) carry nothing we can attribute.
            continue;
        };
        let report = reports.entry(id).or_default();
        let decode = |v: &str| unb64(v).map_err(|e| bad(&format!("bad base64 value: {e}")));
        match kind {
            "begin" => {
                ended.insert(id, false);
            }
            "field" => {
                report.fields.insert(name.to_string(), decode(value)?);
            }
            "word" => {
                report
                    .fields
                    .insert(name.to_string(), value.as_bytes().to_vec());
            }
            "changed" => report.changed = true,
            "fail" => {
                let message = String::from_utf8_lossy(&decode(value)?).into_owned();
                report.failed.get_or_insert(message);
            }
            "stale" => {
                let message = String::from_utf8_lossy(&decode(value)?).into_owned();
                report.stale.get_or_insert(message);
            }
            "end" => {
                let status = value
                    .parse::<i32>()
                    .map_err(|_| bad("end record without a numeric status"))?;
                report.status = Some(status);
                ended.insert(id, true);
            }
            other => return Err(bad(&format!("unknown record kind `{other}`"))),
        }
    }
    for (id, report) in reports.iter_mut() {
        match report.status {
            None if !ended.get(id).copied().unwrap_or(false) => {
                report.failed.get_or_insert_with(|| {
                    "the script stopped before this task finished (killed, timed out or lost \
                     connection)"
                        .to_string()
                });
            }
            Some(status) if status != 0 && report.stale.is_none() => {
                report.failed.get_or_insert_with(|| {
                    format!("the task's shell code exited with status {status}")
                });
            }
            _ => {}
        }
    }
    Ok(reports)
}

fn decode_blob(value: &str) -> Result<Vec<u8>, String> {
    unb64(value).map_err(|e| format!("bad base64 blob: {e}"))
}

/// Hands out the parts of a `blob` record (`task field size,` …) as fields. If the sizes do
/// not add up (a file changed between stat and read), those tasks fail with a clear message.
fn split_blob(reports: &mut BTreeMap<usize, TaskReport>, parts: &str, blob: &[u8]) {
    let parsed: Vec<(usize, &str, usize)> = parts
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let mut words = p.split(' ');
            let id = words.next()?.parse().ok()?;
            let field = words.next()?;
            let size = words.next()?.parse().ok()?;
            Some((id, field, size))
        })
        .collect();
    let total: usize = parsed.iter().map(|p| p.2).sum();
    let mut offset = 0;
    for (id, field, size) in parsed {
        let report = reports.entry(id).or_default();
        if total != blob.len() {
            report.failed.get_or_insert_with(|| {
                "a file changed while kprov was reading it; run again".to_string()
            });
            continue;
        }
        report
            .fields
            .insert(field.to_string(), blob[offset..offset + size].to_vec());
        offset += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_ignores_noise() {
        let out = b"noise\nKP\t1\tbegin\t\t\nKP\t1\tword\tsha\tabc\nKP\t1\tfield\tc\taGk=\n\
KP\t1\tchanged\t\t\nKP\t1\tend\t\t0\nKP\t2\tbegin\t\t\nKP\t2\tfail\t\tYm9vbQ==\nKP\t2\tend\t\t1\n\
KP\t3\tbegin\t\t\n";
        let r = parse_output(out).unwrap();
        assert_eq!(r[&1].fields["sha"], b"abc");
        assert_eq!(r[&1].fields["c"], b"hi");
        assert!(r[&1].changed && r[&1].ok());
        assert_eq!(r[&2].failed.as_deref(), Some("boom"));
        assert!(r[&3].failed.as_deref().unwrap().contains("stopped before"));
    }

    #[test]
    fn nonzero_status_without_message_is_a_failure() {
        let r = parse_output(b"KP\t4\tbegin\t\t\nKP\t4\tend\t\t2\n").unwrap();
        assert!(r[&4].failed.as_deref().unwrap().contains("status 2"));
    }

    #[test]
    fn blob_parts_become_fields() {
        let r = parse_output(
            b"KP\t1\tbegin\t\t\nKP\t1\tend\t\t0\nKP\t-\tblob\t1 a 2,2 f.content 0,1 b 1,\tYWJj\n",
        )
        .unwrap();
        assert_eq!(r[&1].fields["a"], b"ab");
        assert_eq!(r[&1].fields["b"], b"c");
        assert_eq!(r[&2].fields["f.content"], b"");
        let r = parse_output(b"KP\t-\tblob\t1 a 5,\tYWJj\n").unwrap();
        assert!(r[&1].failed.as_deref().unwrap().contains("changed while"));
    }

    #[test]
    fn malformed_records_are_errors() {
        assert!(parse_output(b"KP\t1\tfield\tx\t!!!\n").is_err());
        assert!(parse_output(b"KP\t1\tbogus\tx\ty\n").is_err());
        assert!(parse_output(b"KP\t1\tend\n").is_err());
    }
}
