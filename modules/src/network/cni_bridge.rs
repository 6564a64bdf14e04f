//! `cni_bridge`: pod networking without an overlay, for labs and small flat networks. Each
//! host gets its own slice of the pod CIDR; the reference `bridge` plugin with `host-local`
//! IPAM hands out addresses from it, and every host routes the other hosts' slices to their
//! addresses (live and at boot, through [`RouteSet`]). Pods keep their addresses towards
//! pods on other hosts; only traffic leaving the pod network is masqueraded (kprov's own nat
//! rule instead of the plugin's `ipMasq`, which would hide them from other hosts' pods).
//!
//! **Slice rule**: the host at position `i` (0-based) of the inventory's host order
//! (`groups.all`) gets the `i`-th subnet of size `node_cidr_mask` of `pod_cidr`; a host var
//! `pod_cidr` overrides it for that host (it must lie inside `pod_cidr`). Two hosts whose
//! slices overlap are an error naming both hosts and a free slice ([`slices`]). The
//! iptables rules are [`PodRules`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::file::FileFact;
use crate::facts::unit::UnitFact;
use crate::facts::Fact;
use crate::network::pod_rules::PodRules;
use crate::network::pod_slices::slices;
use crate::network::route::RouteSet;
use crate::network::route_spec::{self, Route, RouteArg};
use crate::script::quote;
use crate::util::args::{self, Presence};
use crate::util::managed::{merge, removal_fact, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// One inventory host as `inventory_host_entries` lists it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostEntry {
    /// The host's names; the first is its inventory name.
    names: Vec<String>,
    /// Its address (must be an IP address: it is the next hop to its pods).
    address: String,
}

/// Arguments of `cni_bridge`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// `present` (default), or `absent`: conflist, boot unit, FORWARD rules and every
    /// gateway route inside `pod_cidr` removed (another CNI plugin took over).
    #[serde(default)]
    state: Presence,
    /// This host's inventory name (required when present).
    #[serde(default)]
    host: String,
    /// Every inventory host in inventory order (`{{ inventory_host_entries }}`).
    #[serde(default)]
    hosts: Vec<HostEntry>,
    /// Per-host slice overrides as `name=cidr` words separated by blanks (from the host var
    /// `pod_cidr`).
    #[serde(default)]
    overrides: String,
    /// The cluster's pod network, e.g. 10.244.0.0/16.
    pod_cidr: String,
    /// Prefix length of each host's slice (default 24).
    #[serde(default = "default_mask")]
    node_cidr_mask: u8,
    /// Name of the Linux bridge (default cni0).
    #[serde(default = "default_bridge")]
    bridge_name: String,
    /// Extra static routes on every host.
    #[serde(default)]
    routes: Vec<RouteArg>,
    /// Where the conflist goes (default /etc/cni/net.d).
    #[serde(default = "default_conf_dir")]
    conf_dir: String,
    /// Boot unit that adds the routes and forwarding rules again (default
    /// kprov-pod-routes); empty: live state only.
    #[serde(default = "default_unit")]
    unit: String,
    /// Where the unit goes (default /etc/systemd/system).
    #[serde(default = "default_systemd_dir")]
    systemd_dir: String,
}

fn default_mask() -> u8 {
    24
}
fn default_bridge() -> String {
    "cni0".into()
}
fn default_conf_dir() -> String {
    "/etc/cni/net.d".into()
}
fn default_unit() -> String {
    "kprov-pod-routes".into()
}
fn default_systemd_dir() -> String {
    "/etc/systemd/system".into()
}

const NAME: &str = "cni_bridge";
/// Routing protocol kprov's pod routes carry, so that removing stale ones never touches
/// routes another CNI (flannel host-gw, calico's BIRD) installed in the pod network.
const PROTO: &str = "static";
/// File name of the conflist in `conf_dir`.
pub(crate) const CONFLIST: &str = "10-kprov-bridge.conflist";

/// The first address after the network address: the bridge's gateway address.
fn gateway(net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()).wrapping_add(1)).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()).wrapping_add(1)).into()),
    }
}

/// The conflist for one host's slice.
pub(crate) fn conflist(bridge: &str, slice: IpNet) -> String {
    let default = if slice.addr().is_ipv4() {
        "0.0.0.0/0"
    } else {
        "::/0"
    };
    let value = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "kprov-bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                // kprov masquerades itself, except towards other pods (see pod_rules):
                // the plugin's ipMasq would hide pod addresses from pods on other hosts.
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": slice.to_string(), "gateway": gateway(slice).to_string()}]],
                    "routes": [{"dst": default}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"}
        ]
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// A built `cni_bridge` task.
#[derive(Debug)]
pub(crate) struct CniBridge {
    conflist: ManagedFile,
    routes: RouteSet,
    /// The FORWARD and masquerade rules.
    rules: PodRules,
    /// This host's slice, reported as the field `pod_subnet` (for `register`); `None` when
    /// the bridge CNI is to be removed.
    slice: Option<IpNet>,
    /// With `state: absent`: the boot unit's name and file.
    removal: Option<(String, String)>,
}

impl CniBridge {
    pub fn build(args: serde_json::Value) -> Result<CniBridge, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "conf_dir", &a.conf_dir)?;
        args::path(NAME, "systemd_dir", &a.systemd_dir)?;
        route_spec::interface(NAME, "bridge_name", &a.bridge_name)?;
        let pod = route_spec::destination(NAME, &a.pod_cidr)?;
        let conflist_path = format!("{}/{CONFLIST}", a.conf_dir.trim_end_matches('/'));
        if a.state == Presence::Absent {
            let unit = if a.unit.is_empty() {
                default_unit()
            } else {
                a.unit.clone()
            };
            args::file_name(NAME, "unit", &unit)?;
            let file = format!("{}/{unit}.service", a.systemd_dir.trim_end_matches('/'));
            return Ok(CniBridge {
                conflist: ManagedFile::new(conflist_path, ""),
                routes: RouteSet::new(Vec::new(), Vec::new(), None, &a.systemd_dir, &[])?
                    .purging(Some(pod), Some(PROTO.into())),
                rules: PodRules::new(pod, None),
                slice: None,
                removal: Some((format!("{unit}.service"), file)),
            });
        }
        let hosts: Vec<(String, String)> = a
            .hosts
            .iter()
            .filter_map(|h| h.names.first().map(|n| (n.clone(), h.address.clone())))
            .collect();
        let mut overrides = BTreeMap::new();
        for word in a.overrides.split_whitespace() {
            let (host, cidr) = word.split_once('=').ok_or_else(|| {
                ModuleError::args(NAME, format!("override `{word}` is not name=cidr"))
            })?;
            let net = route_spec::destination(NAME, cidr).map_err(|_| {
                ModuleError::args(
                    NAME,
                    format!("host var pod_cidr of `{host}`: `{cidr}` is not a network like 10.244.5.0/24"),
                )
            })?;
            overrides.insert(host.to_string(), net);
        }
        let all = slices(pod, a.node_cidr_mask, &hosts, &overrides)?;
        let own = all.iter().find(|s| s.host == a.host).ok_or_else(|| {
            ModuleError::args(NAME, format!("host `{}` is not in `hosts`", a.host))
        })?;
        let mut routes: Vec<Route> = all
            .iter()
            .filter(|s| s.host != a.host)
            .map(|s| Route {
                destination: s.net,
                via: Some(s.address),
                dev: None,
                proto: Some(PROTO.into()),
            })
            .collect();
        for r in &a.routes {
            let mut r = route_spec::route(NAME, r)?;
            r.proto.get_or_insert_with(|| PROTO.into());
            routes.push(r);
        }
        let unit = (!a.unit.is_empty()).then_some(a.unit.as_str());
        let rules = PodRules::new(pod, Some(own.net));
        let routes = RouteSet::new(
            routes,
            Vec::new(),
            unit,
            &a.systemd_dir,
            &rules.boot_lines(),
        )?
        .purging(Some(pod), Some(PROTO.into()));
        let mut conflist = ManagedFile::new(conflist_path, conflist(&a.bridge_name, own.net));
        conflist.mode = Some("644".into());
        Ok(CniBridge {
            conflist,
            routes,
            rules,
            slice: Some(own.net),
            removal: None,
        })
    }

    /// With `state: absent`: the conflist's and the boot unit's files (stat and content).
    fn removed_files(&self, unit_file: &str) -> [FileFact; 2] {
        [
            removal_fact("c.", &self.conflist.path),
            removal_fact("u.", unit_file),
        ]
    }
}

/// With `state: absent`: whether the boot unit is enabled.
fn boot_unit(unit: &str) -> UnitFact {
    UnitFact::new("unit.", unit).enabled()
}

impl Module for CniBridge {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = match (&self.removal, self.slice) {
            (Some((unit, file)), _) => {
                let mut out: String = self.removed_files(file).iter().map(Fact::gather).collect();
                out.push_str(&boot_unit(unit).gather());
                out
            }
            (None, slice) => {
                let mut out = self.conflist.gather("c.");
                if let Some(slice) = slice {
                    out.push_str(&format!(
                        "kp_word pod_subnet {}\n",
                        quote(&slice.to_string())
                    ));
                }
                out
            }
        };
        out.push_str(&self.routes.gather());
        out.push_str(&self.rules.fact().gather());
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        // The routes' plan, once: its diff and its script are parts of this one.
        let routes = self.routes.plan(state)?;
        Ok(Plan::new(
            self.planned_diff(state, routes.diff)?,
            self.planned_script(state, &routes.script)?,
        ))
    }
}

impl CniBridge {
    /// What would change.
    fn planned_diff(&self, state: &State, routes: Diff) -> Result<Diff, ModuleError> {
        let mut parts = Vec::new();
        if let Some((unit, file)) = &self.removal {
            if boot_unit(unit).parse(NAME, state)?.is_enabled_exactly() {
                parts.push(Diff::change(format!("disable {unit}")));
            }
            if let Some(bridge) = self.old_bridge(state)? {
                parts.push(Diff::change(format!("delete bridge {bridge}")));
            }
            for fact in self.removed_files(file) {
                if fact.parse(NAME, state)?.stat.is_some() {
                    parts.push(Diff::change(format!("remove {}", fact.path())));
                }
            }
        } else if let Some(c) = self.conflist.change(NAME, state, "c.")? {
            parts.push(Diff::Change {
                summary: c.summary,
                before: c.texts.as_ref().and_then(|t| t.0.clone()),
                after: c.texts.as_ref().and_then(|t| t.1.clone()),
            });
        }
        parts.push(routes);
        parts.extend(self.rules.changes(state)?);
        Ok(merge(parts))
    }

    /// The script that makes it so.
    fn planned_script(&self, state: &State, routes: &str) -> Result<String, ModuleError> {
        let mut out = match &self.removal {
            Some((unit, file)) => {
                let u = quote(unit);
                let mut out = format!(
                    "if [ \"$(systemctl is-enabled {u} 2>/dev/null)\" = enabled ]; then\n  \
                     kp_run 'systemctl disable '{u} systemctl disable {u} || return\n  kp_changed\nfi\n\
                     kp_rm {} || return\n",
                    quote(file),
                );
                // Only while our conflist is still there: later, the name may be the
                // new plugin's bridge (flannel's is cni0 too).
                if let Some(bridge) = self.old_bridge(state)? {
                    let b = quote(&bridge);
                    out.push_str(&format!(
                        "if [ -e {c} ] && ip link show {b} type bridge >/dev/null 2>&1; then\n  \
                         kp_run 'ip link del '{b} ip link del {b} || return\n  kp_changed\nfi\n",
                        c = quote(&self.conflist.path),
                    ));
                }
                out.push_str(&format!("kp_rm {} || return\n", quote(&self.conflist.path)));
                out
            }
            None => self.conflist.apply(),
        };
        out.push_str(routes);
        out.push_str(&self.rules.script());
        Ok(out)
    }

    /// The bridge named in a conflist kprov wrote earlier (gathered with `state: absent`),
    /// when it is a plain interface name.
    fn old_bridge(&self, state: &State) -> Result<Option<String>, ModuleError> {
        let Some((_, file)) = &self.removal else {
            return Ok(None);
        };
        let [conflist, _] = self.removed_files(file);
        let content = conflist.parse(NAME, state)?.content;
        Ok(content.and_then(|c| bridge_of(&c)))
    }
}

/// The bridge plugin's `bridge` of a conflist, when it is a plain interface name.
fn bridge_of(conflist: &[u8]) -> Option<String> {
    let list: serde_json::Value = serde_json::from_slice(conflist).ok()?;
    let name = list["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["type"] == "bridge")?["bridge"]
        .as_str()?
        .to_string();
    route_spec::interface(NAME, "bridge", &name).ok()?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::netns::Netns;
    use crate::network::pod_rules::MASQ_COMMENT;
    use crate::util::testutil::Planned as _;
    use serde_json::json;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn args(conf_dir: &str) -> serde_json::Value {
        json!({
            "host": "h1",
            "hosts": [
                {"names": ["h0"], "address": "10.77.0.10"},
                {"names": ["h1"], "address": "10.77.0.2"},
                {"names": ["h2"], "address": "10.77.0.12"},
            ],
            "overrides": "h2=10.244.7.0/24 ",
            "pod_cidr": "10.244.0.0/16",
            "conf_dir": conf_dir,
            "unit": "",
            "routes": [{"destination": "10.99.0.0/16", "via": "10.77.0.1"}],
        })
    }

    #[test]
    fn conflist_uses_the_hosts_slice() {
        let m = CniBridge::build(args("/etc/cni/net.d")).unwrap();
        assert_eq!(m.slice, Some(net("10.244.1.0/24")));
        let text = String::from_utf8(m.conflist.content.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "cni0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(
            bridge["ipam"]["ranges"][0][0],
            json!({"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"})
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][2]["type"], "loopback");
        assert_eq!(m.conflist.path, "/etc/cni/net.d/10-kprov-bridge.conflist");
        let mut bad = args("/etc/cni/net.d");
        bad["overrides"] = json!("h2");
        assert!(CniBridge::build(bad).is_err());
        let mut bad = args("/etc/cni/net.d");
        bad["bridge_name"] = json!("br; reboot");
        assert!(CniBridge::build(bad).is_err());
        let boot = PodRules::new(net("10.244.0.0/16"), Some(net("10.244.1.0/24"))).boot_lines();
        assert!(boot[2].contains(
            "iptables -w -t nat -A POSTROUTING -s 10.244.1.0/24 ! -d 10.244.0.0/16 -m comment \
             --comment kprov-pod-masquerade -j MASQUERADE"
        ));
        assert!(boot[0].contains(
            "iptables -w -C FORWARD -s 10.244.0.0/16 -j ACCEPT 2>/dev/null || iptables -w -I"
        ));
    }

    fn nat(ns: &Netns) -> String {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                "iptables",
                "-t",
                "nat",
                "-S",
                "POSTROUTING",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn real_cycle_in_a_network_namespace() {
        let ns = Netns::new("kprov-t-cnibr").expect("tests run as root with ip netns");
        let dir = tempfile::tempdir().unwrap();
        let m = CniBridge::build(args(dir.path().to_str().unwrap())).unwrap();
        let first = ns.gather(&m);
        assert_eq!(first.text("pod_subnet").as_deref(), Some("10.244.1.0/24"));
        let Diff::Change { summary, .. } = m.diff(&first).unwrap() else {
            panic!("expected a change")
        };
        assert!(
            summary.contains("add route 10.244.0.0/24 via 10.77.0.10"),
            "{summary}"
        );
        let r = ns.apply(&m, &first);
        assert!(r.ok() && r.changed, "{r:?}");
        let routes = ns.routes();
        for want in [
            "10.244.0.0/24 via 10.77.0.10 dev kp0 proto static",
            "10.244.7.0/24 via 10.77.0.12 dev kp0 proto static",
            "10.99.0.0/16 via 10.77.0.1 dev kp0 proto static",
        ] {
            assert!(routes.contains(want), "{want} missing: {routes}");
        }
        assert!(!routes.contains("10.244.1.0/24 via"), "{routes}");
        let rules = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0, "iptables", "-S", "FORWARD"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(
            rules.contains("-A FORWARD -d 10.244.0.0/16 -j ACCEPT"),
            "{rules}"
        );
        assert!(
            rules.contains("-A FORWARD -s 10.244.0.0/16 -j ACCEPT"),
            "{rules}"
        );
        assert!(dir.path().join(CONFLIST).is_file());
        assert!(
            nat(&ns).contains(
                "-A POSTROUTING -s 10.244.1.0/24 ! -d 10.244.0.0/16 -m comment --comment \
                 kprov-pod-masquerade -j MASQUERADE"
            ),
            "{}",
            nat(&ns)
        );
        let second = ns.gather(&m);
        assert_eq!(m.diff(&second).unwrap(), Diff::Unchanged);
        let again = ns.apply(&m, &second);
        assert!(again.ok() && !again.changed, "{again:?}");

        // A route someone else put into the pod network (proto boot) is never touched.
        std::process::Command::new("ip")
            .args([
                "-n",
                &ns.0,
                "route",
                "add",
                "10.244.50.0/24",
                "via",
                "10.77.0.50",
            ])
            .status()
            .unwrap();
        assert_eq!(m.diff(&ns.gather(&m)).unwrap(), Diff::Unchanged);

        // A host that left the inventory: its route goes (purged within the pod CIDR).
        let mut fewer = args(dir.path().to_str().unwrap());
        fewer["hosts"].as_array_mut().unwrap().remove(0);
        let m = CniBridge::build(fewer).unwrap();
        let state = ns.gather(&m);
        let r = ns.apply(&m, &state);
        assert!(r.ok() && r.changed, "{r:?}");
        let routes = ns.routes();
        assert!(!routes.contains("10.244.0.0/24"), "{routes}");
        assert!(routes.contains("10.244.7.0/24 via 10.77.0.12"), "{routes}");

        // state: absent (another plugin took over): conflist, bridge, routes, rules gone.
        std::process::Command::new("ip")
            .args(["-n", &ns.0, "link", "add", "cni0", "type", "bridge"])
            .status()
            .unwrap();
        let gone = CniBridge::build(json!({
            "state": "absent",
            "pod_cidr": "10.244.0.0/16",
            "conf_dir": dir.path(),
            "systemd_dir": dir.path(),
        }))
        .unwrap();
        let state = ns.gather(&gone);
        let Diff::Change { summary, .. } = gone.diff(&state).unwrap() else {
            panic!("expected a removal")
        };
        assert!(
            summary.contains("delete route 10.244.7.0/24 via 10.77.0.12"),
            "{summary}"
        );
        assert!(summary.contains("delete bridge cni0"), "{summary}");
        let r = ns.apply(&gone, &state);
        assert!(r.ok() && r.changed, "{r:?}");
        assert!(!dir.path().join(CONFLIST).exists());
        let links = std::process::Command::new("ip")
            .args(["-n", &ns.0, "link", "show"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&links.stdout).contains("cni0"));
        let routes = ns.routes();
        assert!(!routes.contains("10.244.7.0/24"), "{routes}");
        assert!(routes.contains("10.244.50.0/24 via 10.77.0.50"), "{routes}");
        assert!(
            routes.contains("10.99.0.0/16"),
            "extra routes are not pod routes: {routes}"
        );
        let rules = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0, "iptables", "-S", "FORWARD"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&rules.stdout).contains("10.244.0.0/16"));
        assert!(!nat(&ns).contains(MASQ_COMMENT), "{}", nat(&ns));
        assert_eq!(gone.diff(&ns.gather(&gone)).unwrap(), Diff::Unchanged);
    }
}
