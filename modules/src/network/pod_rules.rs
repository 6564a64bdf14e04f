//! The bridge CNI's iptables rules: the pod network accepted in FORWARD both ways, and this
//! host's pods masqueraded when their traffic leaves the pod network (never towards pods
//! on other hosts, which see pod addresses). Without a slice: every such rule removed.

use ipnet::IpNet;

use crate::facts::iptables::{command, IptablesFact, Rule, Rules};
use crate::facts::Fact;
use crate::script::quote;
use crate::{Diff, ModuleError, State};

const NAME: &str = "cni_bridge";

/// Comment on the nat rule that masquerades this host's pods' traffic leaving the pod
/// network (and never pod-to-pod traffic between hosts).
pub(crate) const MASQ_COMMENT: &str = "kprov-pod-masquerade";

/// The rules of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodRules {
    pod: IpNet,
    /// This host's slice; `None`: the rules are to be removed.
    slice: Option<IpNet>,
}

impl PodRules {
    pub(crate) fn new(pod: IpNet, slice: Option<IpNet>) -> PodRules {
        PodRules { pod, slice }
    }

    fn ipt(&self) -> &'static str {
        command(!self.pod.addr().is_ipv4())
    }

    /// The FORWARD rules, by probe name.
    fn forward(&self) -> [(&'static str, Rule); 2] {
        let p = self.pod.to_string();
        let accept = |dir: &str| {
            let words = [dir, &p, "-j", "ACCEPT"].map(str::to_string).to_vec();
            Rule::new(None, "FORWARD", words)
        };
        [("src", accept("-s")), ("dst", accept("-d"))]
    }

    /// The nat POSTROUTING rule of this host's slice (present mode).
    fn masquerade(&self) -> Option<Rule> {
        self.slice.map(|slice| masquerade(self.pod, slice))
    }

    /// What gather asks: whether each rule exists; without a slice, how many masquerade
    /// rules of kprov's are left.
    pub(crate) fn fact(&self) -> IptablesFact {
        let mut fact = IptablesFact::new("fw.", !self.pod.addr().is_ipv4());
        for (name, rule) in self.forward() {
            fact = fact.exists(name, rule);
        }
        match self.masquerade() {
            Some(rule) => fact.exists("masq", rule),
            None => fact.count("masq", Some("nat"), "POSTROUTING", MASQ_COMMENT),
        }
    }

    /// The changes the rules need (nothing when the host has no iptables).
    pub(crate) fn changes(&self, state: &State) -> Result<Vec<Diff>, ModuleError> {
        let now: Rules = self.fact().parse(NAME, state)?;
        let mut out = Vec::new();
        if !now.available {
            return Ok(out);
        }
        let ipt = self.ipt();
        let present = self.slice.is_some();
        for (name, rule) in self.forward() {
            if now.exists(name) != present {
                let op = if present { "-I" } else { "-D" };
                out.push(Diff::change(format!("{ipt} {}", rule.describe(op))));
            }
        }
        match self.masquerade() {
            Some(rule) if !now.exists("masq") => {
                out.push(Diff::change(format!("{ipt} {}", rule.describe("-A"))))
            }
            None if now.count("masq") > 0 => out.push(Diff::change(format!(
                "{ipt} -t nat: delete the {MASQ_COMMENT} rules"
            ))),
            _ => {}
        }
        Ok(out)
    }

    /// The script that makes them so (a host without iptables is left alone).
    pub(crate) fn script(&self) -> String {
        let ipt = self.ipt();
        let mut out = format!("if command -v {ipt} >/dev/null 2>&1; then\n");
        for (_, rule) in self.forward() {
            let check = rule.args("-C");
            if self.slice.is_some() {
                let what = quote(&format!("{ipt} {}", rule.describe("-I")));
                out.push_str(&format!(
                    "  if ! {ipt} -w {check} >/dev/null 2>&1; then\n    \
                     kp_run {what} {ipt} -w {} || return\n    kp_changed\n  fi\n",
                    rule.args("-I")
                ));
            } else {
                let what = quote(&format!("{ipt} {}", rule.describe("-D")));
                out.push_str(&format!(
                    "  while {ipt} -w {check} >/dev/null 2>&1; do\n    \
                     kp_run {what} {ipt} -w {} || return\n    kp_changed\n  done\n",
                    rule.args("-D")
                ));
            }
        }
        match self.masquerade() {
            Some(rule) => {
                let what = quote(&format!("{ipt} {}", rule.describe("-A")));
                out.push_str(&format!(
                    "  if ! {ipt} -w {} >/dev/null 2>&1; then\n    \
                     kp_run {what} {ipt} -w {} || return\n    kp_changed\n  fi\n",
                    rule.args("-C"),
                    rule.args("-A")
                ));
            }
            None => {
                // Every slice this host had: the `-s` of each kprov masquerade rule (only
                // address characters pass the sed expression).
                let rest: Vec<String> = masquerade(self.pod, self.pod).words[2..]
                    .iter()
                    .map(|w| quote(w))
                    .collect();
                out.push_str(&format!(
                    "  for kp_s in $({ipt} -w -t nat -S POSTROUTING 2>/dev/null | \
                     sed -n 's|^-A POSTROUTING -s \\([0-9a-fA-F.:/]*\\) .*{MASQ_COMMENT}.*|\\1|p'); do\n    \
                     kp_run 'delete masquerade rule for '\"$kp_s\" {ipt} -w -t nat -D POSTROUTING -s \"$kp_s\" {} || return\n    \
                     kp_changed\n  done\n",
                    rest.join(" ")
                ));
            }
        }
        out.push_str("fi\n");
        out
    }

    /// `ExecStart=` lines of the boot unit that restore the rules (values are validated
    /// networks; `-`: a host without iptables still boots the unit). Present mode only.
    pub(crate) fn boot_lines(&self) -> Vec<String> {
        let ipt = self.ipt();
        let mut out: Vec<String> = self
            .forward()
            .iter()
            .map(|(_, rule)| {
                let (check, add) = (rule.describe("-C"), rule.describe("-I"));
                format!("-/bin/sh -c '{ipt} -w {check} 2>/dev/null || {ipt} -w {add}'")
            })
            .collect();
        if let Some(rule) = self.masquerade() {
            let (check, add) = (rule.describe("-C"), rule.describe("-A"));
            out.push(format!(
                "-/bin/sh -c '{ipt} -w {check} 2>/dev/null || {ipt} -w {add}'"
            ));
        }
        out
    }
}

/// `-s SLICE ! -d POD -m comment --comment kprov-pod-masquerade -j MASQUERADE` in nat
/// POSTROUTING.
fn masquerade(pod: IpNet, slice: IpNet) -> Rule {
    let words = [
        "-s",
        &slice.to_string(),
        "!",
        "-d",
        &pod.to_string(),
        "-m",
        "comment",
        "--comment",
        MASQ_COMMENT,
        "-j",
        "MASQUERADE",
    ];
    Rule::new(
        Some("nat"),
        "POSTROUTING",
        words.iter().map(|w| w.to_string()).collect(),
    )
}
