//! `etcd_member`: makes sure a member is in an etcd cluster, as `kubeadm join
//! --control-plane` adds the new node's etcd through the etcd API before it starts.
//! `etcdctl` (Debian's `etcd-client`) on this host talks to the existing members with
//! this host's etcd client certificate.
//!
//! As kubeadm 1.29+ does, the member is added as a learner (it does not count for quorum
//! while it catches up) and promoted to a voting member on a later run, once its etcd
//! started; `learner: false` adds a voting member directly (kubeadm 1.28).
//!
//! When the cluster does not answer (not running yet, no certificate yet, no etcdctl),
//! nothing changes and the task says why: run apply again once it answers. A voting
//! member already present (matched by its peer URL) is left alone.
//!
//! `state: absent` removes the member (kubeadm reset's remove-etcd-member phase), so the
//! others keep their quorum once this node's etcd is gone.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::script::quote;
use crate::util::args;
use crate::{Diff, Module, ModuleError, Plan, State};

const NAME: &str = "etcd_member";
const PKI: &str = "/etc/kubernetes/pki/etcd";
/// Tries of `member remove` while etcd answers that the cluster is not healthy enough
/// to lose a member (2 s apart).
const REMOVE_TRIES: u32 = 15;

/// Arguments of `etcd_member`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// The member's name (its etcd `--name`, the node name).
    name: String,
    /// The member's peer URL, e.g. `https://10.0.0.11:2380`.
    peer_url: String,
    /// Client URLs of the existing members, comma-separated, e.g. `https://10.0.0.10:2379`.
    endpoints: String,
    /// CA of the etcd cluster (default /etc/kubernetes/pki/etcd/ca.crt).
    cacert: Option<String>,
    /// Client certificate (default the etcd healthcheck-client certificate).
    cert: Option<String>,
    /// Key of the client certificate.
    key: Option<String>,
    /// Add as a learner, promoted once it runs (default true, as kubeadm 1.29+).
    learner: Option<bool>,
    /// Peer URLs of the members in join order (comma-separated; may list every
    /// member). This member is added only once the ones listed before it are voting
    /// members: etcd takes one learner at a time, and this member's
    /// `--initial-cluster` names exactly those before it.
    join_order: Option<String>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    state: MemberState,
}

/// Whether the member must be in the cluster.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MemberState {
    #[default]
    Present,
    Absent,
}

/// A built `etcd_member` task.
#[derive(Debug)]
pub(crate) struct EtcdMember {
    name: String,
    peer_url: String,
    endpoints: String,
    cacert: String,
    cert: String,
    key: String,
    learner: bool,
    /// Peer URLs of the members that must be voting members before this one is added.
    before: Vec<String>,
    state: MemberState,
}

/// This member's line of `etcdctl member list -w simple`
/// (`ID, STATUS, NAME, PEER URLS, CLIENT URLS, IS LEARNER`).
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    started: bool,
    learner: bool,
}

impl EtcdMember {
    pub fn build(args: serde_json::Value) -> Result<EtcdMember, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        let name = a.name.trim().to_string();
        if name.is_empty() || name.contains([',', '=', ' ']) {
            return Err(ModuleError::args(
                NAME,
                format!("name `{name}` must be a non-empty node name"),
            ));
        }
        let url = |what: &str, value: &str| -> Result<String, ModuleError> {
            let value = value.trim();
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(value.to_string())
            } else {
                Err(ModuleError::args(
                    NAME,
                    format!("{what} `{value}` is not a URL; write it as https://ADDRESS:PORT"),
                ))
            }
        };
        let peer_url = url("peer_url", &a.peer_url)?;
        let endpoints = a
            .endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| url("endpoints", e))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(ModuleError::args(
                NAME,
                "endpoints is empty: give the client URL of an existing member, e.g. https://10.0.0.10:2379",
            ));
        }
        let order = a
            .join_order
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| url("join_order", u))
            .collect::<Result<Vec<_>, _>>()?;
        let before = order
            .iter()
            .take_while(|u| **u != peer_url)
            .cloned()
            .collect();
        Ok(EtcdMember {
            state: a.state,
            before,
            name,
            peer_url,
            endpoints: endpoints.join(","),
            cacert: a.cacert.unwrap_or_else(|| format!("{PKI}/ca.crt")),
            cert: a
                .cert
                .unwrap_or_else(|| format!("{PKI}/healthcheck-client.crt")),
            key: a
                .key
                .unwrap_or_else(|| format!("{PKI}/healthcheck-client.key")),
            learner: a.learner.unwrap_or(true),
        })
    }

    /// `etcdctl` with the endpoints and TLS flags, ready for a subcommand.
    fn etcdctl(&self) -> String {
        format!(
            "ETCDCTL_API=3 etcdctl --endpoints={} --cacert={} --cert={} --key={} \
             --dial-timeout=3s --command-timeout=5s",
            quote(&self.endpoints),
            quote(&self.cacert),
            quote(&self.cert),
            quote(&self.key)
        )
    }

    /// Sets `kp_why` (empty when the cluster answered) and `kp_list` (the member list).
    fn query(&self) -> String {
        format!(
            "kp_why= kp_list=\n\
             if ! command -v etcdctl >/dev/null 2>&1; then kp_why='etcdctl is not installed on this host (package etcd-client)'\n\
             elif ! [ -r {cacert} ] || ! [ -r {cert} ] || ! [ -r {key} ]; then kp_why='the etcd client certificate is not on this host yet'\n\
             elif ! kp_list=$({etcdctl} member list -w simple 2>&1 </dev/null 3>&-); then\n\
             kp_why=\"etcd at {endpoints_text} does not answer: $(printf '%s' \"$kp_list\" | tail -n 2 | tr '\\n' ' ')\"\n\
             fi\n",
            cacert = quote(&self.cacert),
            cert = quote(&self.cert),
            key = quote(&self.key),
            etcdctl = self.etcdctl(),
            endpoints_text = self.endpoints.replace(['"', '\\', '$', '`'], ""),
        )
    }

    /// Our member in the output of `etcdctl member list -w simple`, found by peer URL.
    fn listed(&self, list: &str) -> Option<Listed> {
        listed(list, &self.peer_url)
    }

    /// The first member that must join before this one and is not a voting member yet.
    fn waiting_for<'a>(&'a self, list: &str) -> Option<&'a str> {
        self.before
            .iter()
            .find(|url| !matches!(listed(list, url), Some(Listed { learner: false, .. })))
            .map(String::as_str)
    }

    /// `state: absent`: remove the member while the cluster answers.
    fn diff_absent(&self, state: &State) -> Result<Diff, ModuleError> {
        if let Some(why) = state.text("why") {
            return Ok(Diff::Run {
                summary: format!(
                    "etcd member {} not removed: {}; remove it by hand with `etcdctl member remove` \
                     if the other members still list it",
                    self.name,
                    why.trim()
                ),
            });
        }
        let members = state.require(NAME, "members")?;
        Ok(match self.listed(&members) {
            Some(_) => Diff::change(format!(
                "remove etcd member {} ({}) through {}",
                self.name, self.peer_url, self.endpoints
            )),
            None => Diff::Unchanged,
        })
    }

    /// Apply fragment of `state: absent`: checks again, removes the member by its ID.
    ///
    /// etcd refuses to remove a voting member while fewer than a quorum of the others
    /// have been connected for its health interval (5 s), answering "unhealthy cluster"
    /// or "not enough started members" right after a member joined or a peer
    /// reconnected. Like kubeadm's remove-etcd-member phase, those answers are retried
    /// (about 30 s); any other error fails at once.
    fn apply_absent(&self) -> String {
        format!(
            "{query}[ -n \"$kp_why\" ] && return 0\n\
             kp_line=$(printf '%s\\n' \"$kp_list\" | tr ',' ' ' | grep -F -- {peer_space} | head -n 1)\n\
             [ -z \"$kp_line\" ] && return 0\n\
             kp_mid=$(printf '%s' \"$kp_line\" | awk '{{print $1}}')\n\
             kp_n=0\n\
             until kp_o=$({etcdctl} member remove \"$kp_mid\" 2>&1 </dev/null 3>&-); do\n\
             case $kp_o in\n\
             *'member not found'*) return 0 ;;\n\
             *'unhealthy cluster'*|*'not enough started members'*|*'leader changed'*|*'Unavailable'*|*'deadline exceeded'*) ;;\n\
             *) kp_fail \"etcdctl member remove failed: $(printf '%s' \"$kp_o\" | tail -n 2 | tr '\\n' ' ')\"; return ;;\n\
             esac\n\
             kp_n=$((kp_n + 1))\n\
             if [ \"$kp_n\" -ge {tries} ]; then kp_fail \"etcd member {name_text} was not removed after {tries} tries: $(printf '%s' \"$kp_o\" | tail -n 2 | tr '\\n' ' ')(check etcdctl endpoint health --cluster, then run apply again)\"; return; fi\n\
             sleep 2\n\
             done\n\
             kp_changed\n",
            query = self.query(),
            peer_space = quote(&format!(" {} ", self.peer_url)),
            etcdctl = self.etcdctl(),
            tries = REMOVE_TRIES,
            name_text = self.name.replace(['"', '\\', '$', '`'], ""),
        )
    }

    /// Shell that returns (no change) unless every member of `before` is a voting
    /// member in `$kp_list`.
    fn gate(&self) -> String {
        if self.before.is_empty() {
            return String::new();
        }
        let urls: Vec<String> = self
            .before
            .iter()
            .map(|u| quote(&format!(" {u} ")))
            .collect();
        format!(
            "for kp_u in {}; do\n\
             kp_l=$(printf '%s\\n' \"$kp_list\" | tr ',' ' ' | grep -F -- \"$kp_u\" | head -n 1)\n\
             [ -n \"$kp_l\" ] && [ \"$(printf '%s' \"$kp_l\" | awk '{{print $NF}}')\" = false ] || return 0\n\
             done\n",
            urls.join(" ")
        )
    }
}

/// The member with peer URL `peer` in the output of `etcdctl member list -w simple`.
fn listed(list: &str, peer: &str) -> Option<Listed> {
    list.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(", ").map(str::trim).collect();
        let ours = fields
            .get(3)
            .is_some_and(|urls| urls.split(',').any(|u| u.trim() == peer));
        ours.then(|| Listed {
            started: fields.get(1) == Some(&"started"),
            learner: fields.len() >= 6 && fields.last() == Some(&"true"),
        })
    })
}

impl Module for EtcdMember {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        format!(
            "{}if [ -n \"$kp_why\" ]; then kp_field why \"$kp_why\"; else kp_field members \"$kp_list\"; fi\n",
            self.query()
        )
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl EtcdMember {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        if self.state == MemberState::Absent {
            return self.diff_absent(state);
        }
        if let Some(why) = state.text("why") {
            return Ok(Diff::Run {
                summary: format!(
                    "etcd member {} not added: {}; run apply again once the first master's etcd answers",
                    self.name,
                    why.trim()
                ),
            });
        }
        let members = state.require(NAME, "members")?;
        Ok(match self.listed(&members) {
            None => match self.waiting_for(&members) {
                Some(first) => Diff::Run {
                    summary: format!(
                        "etcd member {} not added yet: the member at {first} joins first \
                         (one at a time, in join order); run apply again once it is a voting member",
                        self.name
                    ),
                },
                None => Diff::change(format!(
                "add etcd member {} ({}){} through {}",
                self.name,
                self.peer_url,
                if self.learner { " as a learner" } else { "" },
                self.endpoints
            )),
            },
            Some(Listed {
                learner: true,
                started: false,
            }) => Diff::Run {
                summary: format!(
                    "etcd learner {} is not running yet: it is promoted to a voting member once \
                     its etcd runs (run apply again)",
                    self.name
                ),
            },
            Some(Listed { learner: true, .. }) => Diff::change(format!(
                "promote etcd learner {} to a voting member",
                self.name
            )),
            Some(_) => Diff::Unchanged,
        })
    }

    /// Checks again (the cluster may have come up or changed since gather), then adds
    /// the member, or promotes the started learner (retrying while it catches up).
    fn planned_script(&self, _state: &State) -> String {
        if self.state == MemberState::Absent {
            return self.apply_absent();
        }
        let etcdctl = self.etcdctl();
        let learner = if self.learner { " --learner" } else { "" };
        format!(
            "{query}[ -n \"$kp_why\" ] && return 0\n\
             kp_line=$(printf '%s\\n' \"$kp_list\" | tr ',' ' ' | grep -F -- {peer_space} | head -n 1)\n\
             if [ -z \"$kp_line\" ]; then\n\
             {gate}kp_run 'etcdctl member add' sh -c {add} || return\n\
             kp_changed; return 0\n\
             fi\n\
             [ \"$(printf '%s' \"$kp_line\" | awk '{{print $NF}}')\" = true ] || return 0\n\
             [ \"$(printf '%s' \"$kp_line\" | awk '{{print $2}}')\" = started ] || return 0\n\
             kp_mid=$(printf '%s' \"$kp_line\" | awk '{{print $1}}')\n\
             kp_n=0\n\
             until kp_o=$({etcdctl} member promote \"$kp_mid\" 2>&1 </dev/null 3>&-); do\n\
             kp_n=$((kp_n + 1))\n\
             if [ \"$kp_n\" -ge 20 ]; then kp_fail \"etcd learner {name_text} was not promoted: $(printf '%s' \"$kp_o\" | tail -n 2 | tr '\\n' ' ')(run apply again once it caught up)\"; return; fi\n\
             sleep 1\n\
             done\n\
             kp_changed\n",
            query = self.query(),
            gate = self.gate(),
            peer_space = quote(&format!(" {} ", self.peer_url)),
            add = quote(&format!(
                "{etcdctl} member add {} --peer-urls={}{learner}",
                quote(&self.name),
                quote(&self.peer_url)
            )),
            name_text = self.name.replace(['"', '\\', '$', '`'], ""),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::fields;
    use crate::util::testutil::Planned as _;
    use serde_json::json;

    fn build() -> EtcdMember {
        EtcdMember::build(json!({
            "name": "master2",
            "peer_url": "https://10.1.0.11:2380",
            "endpoints": "https://10.1.0.10:2379",
        }))
        .unwrap()
    }

    #[test]
    fn absent_learner_and_voting_members() {
        let m = build();
        let list = "8e9e05c52164694d, started, master, https://10.1.0.10:2380, https://10.1.0.10:2379, false\n";
        let summary = |list: &str| match m.diff(&fields(&[("members", list)])).unwrap() {
            Diff::Change { summary, .. } => format!("change: {summary}"),
            Diff::Run { summary } => format!("run: {summary}"),
            Diff::Unchanged => "unchanged".into(),
        };
        let add = summary(list);
        assert!(
            add.starts_with("change: add etcd member master2") && add.contains("as a learner"),
            "{add}"
        );
        let unstarted =
            format!("{list}91bc3c398fb3c146, unstarted, , https://10.1.0.11:2380, , true\n");
        let waiting = summary(&unstarted);
        assert!(
            waiting.starts_with("run:") && waiting.contains("not running yet"),
            "{waiting}"
        );
        let started = format!("{list}91bc3c398fb3c146, started, master2, https://10.1.0.11:2380, https://10.1.0.11:2379, true\n");
        assert!(summary(&started).starts_with("change: promote etcd learner master2"));
        let voting = started.replace("2379, true", "2379, false");
        assert_eq!(summary(&voting), "unchanged");
        // Another member whose URL only starts like ours is not ours.
        let other = format!(
            "{list}1, started, m3, https://10.1.0.11:23800, https://10.1.0.11:2379, false\n"
        );
        assert!(summary(&other).starts_with("change: add"));
        let voting_add = EtcdMember::build(json!({
            "name": "master2",
            "peer_url": "https://10.1.0.11:2380",
            "endpoints": "https://10.1.0.10:2379",
            "learner": false,
        }))
        .unwrap();
        assert!(!voting_add
            .planned_script(&State::default())
            .contains("--learner"));
        assert!(m.planned_script(&State::default()).contains("--learner"));
        let down = m
            .diff(&fields(&[(
                "why",
                "etcd at https://10.1.0.10:2379 does not answer",
            )]))
            .unwrap();
        assert!(
            matches!(&down, Diff::Run { summary } if summary.contains("not added") && summary.contains("run apply again")),
            "{down:?}"
        );
        assert!(EtcdMember::build(
            json!({"name": "x", "peer_url": "10.0.0.1:2380", "endpoints": "https://a:2379"})
        )
        .unwrap_err()
        .to_string()
        .contains("https://"));
    }

    fn with_order(order: &str) -> EtcdMember {
        EtcdMember::build(json!({
            "name": "master3",
            "peer_url": "https://10.1.0.12:2380",
            "endpoints": "https://10.1.0.10:2379",
            "join_order": order,
            "cacert": "/dev/null",
            "cert": "/dev/null",
            "key": "/dev/null",
        }))
        .unwrap()
    }

    const M1: &str =
        "8e9e05c52164694d, started, master, https://10.1.0.10:2380, https://10.1.0.10:2379, false";
    const M2_LEARNER: &str =
        "91bc3c398fb3c146, started, master2, https://10.1.0.11:2380, https://10.1.0.11:2379, true";
    const M3_LEARNER: &str =
        "a1b2c3d4e5f60718, started, master3, https://10.1.0.12:2380, https://10.1.0.12:2379, true";

    #[test]
    fn members_join_one_at_a_time_in_order() {
        let order = "https://10.1.0.10:2380,https://10.1.0.11:2380,https://10.1.0.12:2380";
        let m = with_order(order);
        assert_eq!(m.before.len(), 2);
        let d = m.diff(&fields(&[("members", M1)])).unwrap();
        assert!(
            matches!(&d, Diff::Run { summary } if summary.contains("https://10.1.0.11:2380 joins first")),
            "{d:?}"
        );
        let learner = format!("{M1}\n{M2_LEARNER}\n");
        assert!(matches!(
            m.diff(&fields(&[("members", &learner)])).unwrap(),
            Diff::Run { .. }
        ));
        let voting = learner.replace("2379, true", "2379, false");
        assert!(m
            .diff(&fields(&[("members", &voting)]))
            .unwrap()
            .needs_apply());
        assert!(matches!(
            m.diff(&fields(&[("members", &voting)])).unwrap(),
            Diff::Change { .. }
        ));
    }

    /// The apply fragment in a real shell against a fake `etcdctl` that prints a given
    /// member list and records every other call.
    fn apply_with_fake_etcdctl(m: &EtcdMember, list: &str) -> (crate::TaskReport, String) {
        apply_with_failing_etcdctl(m, list, 0, "")
    }

    /// Like [`apply_with_fake_etcdctl`], but the first `failures` calls other than
    /// `member list` print `error` and exit 1.
    fn apply_with_failing_etcdctl(
        m: &EtcdMember,
        list: &str,
        failures: u32,
        error: &str,
    ) -> (crate::TaskReport, String) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("etcdctl");
        let log = dir.path().join("calls");
        std::fs::write(dir.path().join("list"), list).unwrap();
        std::fs::write(dir.path().join("error"), error).unwrap();
        std::fs::write(dir.path().join("failures"), failures.to_string()).unwrap();
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ncase \"$*\" in *'member list'*) cat {d}/list; exit 0 ;; esac\n\
                 echo \"$*\" >>{d}/calls\nn=$(cat {d}/failures)\n\
                 if [ \"$n\" -gt 0 ]; then echo $((n - 1)) >{d}/failures; cat {d}/error; exit 1; fi\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = crate::apply_script(&[])
            + &format!(
                "PATH={}:$PATH\nkp_begin 7\nkp_body() {{\n:\n{}\n}}\nkp_body\nkp_end $?\n",
                dir.path().display(),
                m.planned_script(&State::default())
            );
        let out = crate::util::testutil::run_stdin(&["sh"], &script);
        let report = crate::parse_output(&out.stdout)
            .unwrap()
            .remove(&7)
            .unwrap();
        (report, std::fs::read_to_string(log).unwrap_or_default())
    }

    #[test]
    fn absent_removes_the_member_by_id_in_a_real_shell() {
        let m = EtcdMember::build(json!({
            "name": "master2",
            "peer_url": "https://10.1.0.11:2380",
            "endpoints": "https://10.1.0.10:2379",
            "state": "absent",
            "cacert": "/dev/null",
            "cert": "/dev/null",
            "key": "/dev/null",
        }))
        .unwrap();
        let both = format!("{M1}\n{M2_LEARNER}\n");
        let d = m.diff(&fields(&[("members", &both)])).unwrap();
        assert!(
            matches!(&d, Diff::Change { summary, .. } if summary.starts_with("remove etcd member master2")),
            "{d:?}"
        );
        assert_eq!(
            m.diff(&fields(&[("members", M1)])).unwrap(),
            Diff::Unchanged
        );
        let down = m.diff(&fields(&[("why", "etcd does not answer")])).unwrap();
        assert!(matches!(&down, Diff::Run { summary } if summary.contains("not removed")));
        let (r, calls) = apply_with_fake_etcdctl(&m, &both);
        assert!(r.ok() && r.changed, "{r:?}");
        assert!(calls.contains("member remove 91bc3c398fb3c146"), "{calls}");
        let (r, calls) = apply_with_fake_etcdctl(&m, M1);
        assert!(r.ok() && !r.changed && calls.is_empty(), "{r:?} {calls}");
    }

    #[test]
    fn absent_retries_while_etcd_says_the_cluster_is_unhealthy() {
        let m = EtcdMember::build(json!({
            "name": "master2",
            "peer_url": "https://10.1.0.11:2380",
            "endpoints": "https://10.1.0.10:2379",
            "state": "absent",
            "cacert": "/dev/null",
            "cert": "/dev/null",
            "key": "/dev/null",
        }))
        .unwrap();
        let both = format!("{M1}\n{M2_LEARNER}\n");
        let unhealthy = "Error: etcdserver: unhealthy cluster\n";
        let (r, calls) = apply_with_failing_etcdctl(&m, &both, 2, unhealthy);
        assert!(r.ok() && r.changed, "{r:?}");
        assert_eq!(calls.matches("member remove 91bc3c398fb3c146").count(), 3);
        // Any other error fails at once, naming etcd's answer.
        let (r, calls) = apply_with_failing_etcdctl(&m, &both, 5, "Error: permission denied\n");
        assert!(!r.ok(), "{r:?}");
        assert!(format!("{r:?}").contains("permission denied"), "{r:?}");
        assert_eq!(calls.lines().count(), 1, "{calls}");
    }

    #[test]
    fn apply_adds_waits_or_promotes_in_a_real_shell() {
        let order = "https://10.1.0.10:2380,https://10.1.0.11:2380,https://10.1.0.12:2380";
        let m = with_order(order);
        // master2 is still a learner: master3 waits.
        let (r, calls) = apply_with_fake_etcdctl(&m, &format!("{M1}\n{M2_LEARNER}\n"));
        assert!(r.ok() && !r.changed && calls.is_empty(), "{r:?} {calls}");
        // master2 votes: master3 is added as a learner.
        let voting = format!("{M1}\n{M2_LEARNER}\n").replace("2379, true", "2379, false");
        let (r, calls) = apply_with_fake_etcdctl(&m, &voting);
        assert!(r.ok() && r.changed, "{r:?}");
        assert!(
            calls.contains("member add master3 --peer-urls=https://10.1.0.12:2380 --learner"),
            "{calls}"
        );
        // master3 runs as a learner: promoted by its ID.
        let (r, calls) = apply_with_fake_etcdctl(&m, &format!("{voting}{M3_LEARNER}\n"));
        assert!(r.ok() && r.changed, "{r:?}");
        assert!(calls.contains("member promote a1b2c3d4e5f60718"), "{calls}");
        // A voting member: nothing to do.
        let done = format!("{voting}{M3_LEARNER}\n").replace("2379, true", "2379, false");
        let (r, calls) = apply_with_fake_etcdctl(&m, &done);
        assert!(r.ok() && !r.changed && calls.is_empty(), "{r:?} {calls}");
    }

    /// On this machine: no etcd answers at a closed port, so gather explains why and
    /// apply changes nothing.
    #[test]
    fn a_cluster_that_does_not_answer_changes_nothing() {
        let m = EtcdMember::build(json!({
            "name": "master2",
            "peer_url": "https://127.0.0.1:2380",
            "endpoints": "https://127.0.0.1:1",
            "cacert": "/nonexistent/ca.crt",
        }))
        .unwrap();
        let state = crate::util::testutil::gather(&m).state();
        let why = state.text("why").unwrap_or_default();
        assert!(!why.is_empty(), "{state:?}");
        assert!(matches!(m.diff(&state).unwrap(), Diff::Run { .. }));
        let r = crate::util::testutil::apply(&m, &state);
        assert!(r.ok() && !r.changed, "{r:?}");
    }
}
