//! `swap`: swap off now (`swapoff -a`) and after reboot (swap lines in fstab commented).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::util::edit::{self, lines, rejoin};
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `swap` (the defaults are what hosts need; tests point elsewhere).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default = "default_fstab")]
    fstab: String,
    #[serde(default = "default_swaps")]
    proc_swaps: String,
}

fn default_fstab() -> String {
    "/etc/fstab".to_string()
}
fn default_swaps() -> String {
    "/proc/swaps".to_string()
}

/// A built `swap` task.
#[derive(Debug)]
pub(crate) struct Swap {
    fstab: String,
    proc_swaps: String,
}

const NAME: &str = "swap";

/// Comments out active swap lines (`# ` in front).
fn comment_swap_lines(current: Option<&[u8]>, path: &str) -> Result<Option<Vec<u8>>, ModuleError> {
    let Some(cur) = current else { return Ok(None) };
    let mut all = lines(NAME, path, Some(cur))?;
    for line in all.iter_mut() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.trim_start().starts_with('#') && fields.get(2) == Some(&"swap") {
            *line = format!("# {line}");
        }
    }
    Ok(Some(rejoin(&all, Some(cur))))
}

impl Swap {
    pub fn build(args: serde_json::Value) -> Result<Swap, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "fstab", &a.fstab)?;
        args::path(NAME, "proc_swaps", &a.proc_swaps)?;
        Ok(Swap {
            fstab: a.fstab,
            proc_swaps: a.proc_swaps,
        })
    }

    /// Shell that sets kp_n to the number of active swap areas.
    fn count(&self) -> String {
        let p = quote(&self.proc_swaps);
        format!(
            "kp_n=0\nif [ -r {p} ]; then\n  while IFS= read -r kp_l; do kp_n=$((kp_n + 1)); done <{p}\n  \
             [ \"$kp_n\" -gt 0 ] && kp_n=$((kp_n - 1))\nfi\n"
        )
    }
}

impl Module for Swap {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((&self.fstab, "f."))
    }

    fn gather(&self) -> String {
        format!(
            "{}{}kp_word swaps \"$kp_n\"\n",
            edit::gather("f.", &self.fstab),
            self.count()
        )
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let path = &self.fstab;
        let file = edit::plan(
            NAME,
            state,
            "f.",
            path,
            &|c| comment_swap_lines(c, path),
            None,
        )?;
        let active: u32 = state.require(NAME, "swaps")?.trim().parse().unwrap_or(0);
        let now = (active > 0).then(|| format!("swapoff -a ({active} active)"));
        let tail = format!(
            "{}if [ \"$kp_n\" -gt 0 ]; then\n  kp_run 'swapoff -a' swapoff -a || return\n  kp_changed\nfi\n",
            self.count()
        );
        Ok(file.into_plan(now.into_iter().collect(), &tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use crate::Diff;
    use serde_json::json;

    #[test]
    fn comments_only_active_swap_lines() {
        let fstab =
            "UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\n";
        let new = comment_swap_lines(Some(fstab.as_bytes()), "/etc/fstab")
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            "UUID=1 / ext4 defaults 0 1\n# /swapfile none swap sw 0 0\n# /old none swap sw 0 0\n"
        );
        assert_eq!(comment_swap_lines(None, "/etc/fstab").unwrap(), None);
    }

    #[test]
    fn active_swap_is_a_change() {
        let m = Swap::build(json!({})).unwrap();
        let d = m
            .diff(&fields(&[("f.stat", "absent"), ("swaps", "2")]))
            .unwrap();
        assert_eq!(d, Diff::change("swapoff -a (2 active)"));
        assert_eq!(
            m.diff(&fields(&[("f.stat", "absent"), ("swaps", "0")]))
                .unwrap(),
            Diff::Unchanged
        );
    }

    #[test]
    fn real_cycle_fstab_only() {
        // A /proc/swaps with only its header: nothing is swapped off on this machine.
        let dir = tempfile::tempdir().unwrap();
        let swaps = dir.path().join("swaps");
        std::fs::write(&swaps, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n").unwrap();
        let fstab = dir.path().join("fstab");
        std::fs::write(
            &fstab,
            "/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n",
        )
        .unwrap();
        run_cycle(&Swap::build(json!({"fstab": fstab, "proc_swaps": swaps})).unwrap());
        assert_eq!(
            std::fs::read_to_string(&fstab).unwrap(),
            "/dev/sda1 / ext4 defaults 0 1\n# /dev/sda2 none swap sw 0 0\n"
        );
    }
}
