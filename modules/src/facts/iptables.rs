//! iptables rules of one IP family: whether given rules exist (`-C`) and how many rules of
//! a chain mention a word. Fields: `PREFIXiptables` (`1` when the command exists), then one
//! per probe, `PREFIXNAME`: `1` for an existing rule, a number for a count.

use std::collections::BTreeMap;

use super::{Fact, Prefix};
use crate::script::quote;
use crate::{ModuleError, State};

/// One rule: its table (`None`: filter), chain and the words after the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub table: Option<&'static str>,
    pub chain: &'static str,
    pub words: Vec<String>,
}

impl Rule {
    pub(crate) fn new(
        table: Option<&'static str>,
        chain: &'static str,
        words: Vec<String>,
    ) -> Rule {
        Rule {
            table,
            chain,
            words,
        }
    }

    /// `[-t TABLE] OP CHAIN WORDS…` for an operation such as `-C`, `-I`, `-A` or `-D`, the
    /// words quoted for the shell (table and chain are kprov's own).
    pub(crate) fn args(&self, op: &str) -> String {
        let mut out = self.head(op);
        for w in &self.words {
            out.push(' ');
            out.push_str(&quote(w));
        }
        out
    }

    /// The same as text for messages and diffs, unquoted.
    pub(crate) fn describe(&self, op: &str) -> String {
        std::iter::once(self.head(op))
            .chain(self.words.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn head(&self, op: &str) -> String {
        match self.table {
            Some(t) => format!("-t {t} {op} {}", self.chain),
            None => format!("{op} {}", self.chain),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Exists(Rule),
    Count {
        table: Option<&'static str>,
        chain: &'static str,
        word: String,
    },
}

/// The probes of one family's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IptablesFact {
    prefix: Prefix,
    v6: bool,
    probes: Vec<(&'static str, Probe)>,
}

/// A gathered [`IptablesFact`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// The host has the command (without it nothing else was gathered).
    pub available: bool,
    exists: BTreeMap<&'static str, bool>,
    counts: BTreeMap<&'static str, usize>,
}

impl Rules {
    /// The probe `name` found its rule.
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.exists.get(name).copied().unwrap_or(false)
    }

    /// How many rules the count probe `name` found.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }
}

/// `iptables` or `ip6tables`.
pub(crate) fn command(v6: bool) -> &'static str {
    if v6 {
        "ip6tables"
    } else {
        "iptables"
    }
}

impl IptablesFact {
    pub(crate) fn new(prefix: impl Into<String>, v6: bool) -> IptablesFact {
        IptablesFact {
            prefix: Prefix::new(prefix),
            v6,
            probes: Vec::new(),
        }
    }

    /// Also checks whether `rule` exists, as probe `name`.
    pub(crate) fn exists(mut self, name: &'static str, rule: Rule) -> IptablesFact {
        self.probes.push((name, Probe::Exists(rule)));
        self
    }

    /// Also counts the rules of `chain` that mention `word`, as probe `name`.
    pub(crate) fn count(
        mut self,
        name: &'static str,
        table: Option<&'static str>,
        chain: &'static str,
        word: &str,
    ) -> IptablesFact {
        let word = word.to_string();
        self.probes
            .push((name, Probe::Count { table, chain, word }));
        self
    }
}

impl Fact for IptablesFact {
    type Value = Rules;

    fn gather(&self) -> String {
        let ipt = command(self.v6);
        let mut out = format!(
            "if command -v {ipt} >/dev/null 2>&1; then\n  kp_word {} 1\n",
            self.prefix.field("iptables")
        );
        for (name, probe) in &self.probes {
            let field = self.prefix.field(name);
            match probe {
                Probe::Exists(rule) => out.push_str(&format!(
                    "  if {ipt} -w {} >/dev/null 2>&1; then kp_word {field} 1; fi\n",
                    rule.args("-C")
                )),
                Probe::Count { table, chain, word } => {
                    let list = Rule::new(*table, chain, Vec::new()).args("-S");
                    out.push_str(&format!(
                        "  kp_word {field} \"$({ipt} -w {list} 2>/dev/null | grep -c -e {})\"\n",
                        quote(word)
                    ));
                }
            }
        }
        out.push_str("fi\n");
        out
    }

    fn parse(&self, _module: &str, state: &State) -> Result<Rules, ModuleError> {
        let mut rules = Rules {
            available: state.flag(&self.prefix.field("iptables")),
            ..Rules::default()
        };
        for (name, probe) in &self.probes {
            let field = self.prefix.field(name);
            match probe {
                Probe::Exists(_) => {
                    rules.exists.insert(name, state.flag(&field));
                }
                Probe::Count { .. } => {
                    let n = state.text(&field).and_then(|t| t.trim().parse().ok());
                    rules.counts.insert(name, n.unwrap_or(0));
                }
            }
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::fields;

    fn accept(dir: &str) -> Rule {
        let words = [dir, "10.244.0.0/16", "-j", "ACCEPT"];
        Rule::new(None, "FORWARD", words.map(String::from).to_vec())
    }

    #[test]
    fn probes_print_and_read_fields_under_the_prefix() {
        let fact = IptablesFact::new("fw.", false)
            .exists("src", accept("-s"))
            .count("masq", Some("nat"), "POSTROUTING", "kprov-x");
        let sh = fact.gather();
        assert!(
            sh.contains("if command -v iptables >/dev/null 2>&1; then\n  kp_word fw.iptables 1\n")
        );
        assert!(sh.contains(
            "  if iptables -w -C FORWARD '-s' '10.244.0.0/16' '-j' 'ACCEPT' >/dev/null 2>&1; then kp_word fw.src 1; fi\n"
        ));
        assert!(sh.contains(
            "kp_word fw.masq \"$(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -c -e 'kprov-x')\""
        ));
        let got = fact
            .parse(
                "t",
                &fields(&[("fw.iptables", "1"), ("fw.src", "1"), ("fw.masq", "2")]),
            )
            .unwrap();
        assert!(got.available && got.exists("src"));
        assert_eq!(got.count("masq"), 2);
        let none = fact.parse("t", &fields(&[])).unwrap();
        assert!(!none.available && !none.exists("src") && none.count("masq") == 0);
        assert!(IptablesFact::new("", true).gather().contains("ip6tables"));
    }

    #[test]
    fn gather_succeeds_whatever_it_finds() {
        // Read-only checks of this machine's rules (a missing rule is no failure).
        let fact = IptablesFact::new("fw.", false)
            .exists("src", accept("-s"))
            .count("masq", Some("nat"), "POSTROUTING", "kprov-x");
        let r = crate::util::testutil::run_fragment(&fact.gather());
        assert!(r.ok(), "{r:?}");
        assert_eq!(fact.parse("t", &r.state()).unwrap().count("masq"), 0);
    }

    #[test]
    fn rules_as_text() {
        let r = Rule::new(
            Some("nat"),
            "POSTROUTING",
            vec!["-j".into(), "MASQUERADE".into()],
        );
        assert_eq!(r.describe("-A"), "-t nat -A POSTROUTING -j MASQUERADE");
        assert_eq!(
            accept("-d").describe("-I"),
            "-I FORWARD -d 10.244.0.0/16 -j ACCEPT"
        );
    }
}
