//! `route`: a set of static routes in the main table, live (`ip route replace`/`del`) and,
//! optionally, replayed at boot by a generated systemd oneshot unit (enabled).

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::routes::{RoutesFact, SeenRoute, TYPES};
use crate::facts::Fact;
use crate::network::route_spec::{destination, protocol, route, Route, RouteArg};
use crate::script::quote;
use crate::system::service::Service;
use crate::util::args;
use crate::util::managed::{fold, merge};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `route`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Routes that must exist (replaced when their next hop or interface differs).
    #[serde(default)]
    routes: Vec<RouteArg>,
    /// Destinations whose routes must not exist.
    #[serde(default)]
    absent: Vec<String>,
    /// A network in which every other route through a gateway (`via`) is deleted, e.g. the
    /// pod network, so routes to hosts that left do not linger.
    purge_within: Option<String>,
    /// With `purge_within`: only routes of this protocol are deleted (e.g. `static`, so
    /// routes other daemons installed in the same network stay).
    purge_proto: Option<String>,
    /// Name of a systemd oneshot unit that adds `routes` again at every boot (written and
    /// enabled); unset: live routes only.
    unit: Option<String>,
    /// Where the unit goes (default /etc/systemd/system).
    #[serde(default = "default_systemd_dir")]
    systemd_dir: String,
}

fn default_systemd_dir() -> String {
    "/etc/systemd/system".to_string()
}

/// A built `route` task.
#[derive(Debug)]
pub(crate) struct RouteSet {
    routes: Vec<Route>,
    absent: Vec<IpNet>,
    unit: Option<Service>,
    purge_within: Option<IpNet>,
    purge_proto: Option<String>,
}

const NAME: &str = "route";

impl RouteSet {
    pub fn build(args: serde_json::Value) -> Result<RouteSet, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        let routes = a
            .routes
            .iter()
            .map(|r| route(NAME, r))
            .collect::<Result<Vec<_>, _>>()?;
        let absent = a
            .absent
            .iter()
            .map(|d| destination(NAME, d))
            .collect::<Result<Vec<_>, _>>()?;
        let purge = a
            .purge_within
            .as_deref()
            .map(|p| destination(NAME, p))
            .transpose()?;
        if routes.is_empty() && absent.is_empty() && purge.is_none() {
            return Err(ModuleError::args(
                NAME,
                "give `routes`, `absent` or `purge_within`",
            ));
        }
        if let Some(p) = &a.purge_proto {
            protocol(NAME, p)?;
        }
        Ok(
            Self::new(routes, absent, a.unit.as_deref(), &a.systemd_dir, &[])?
                .purging(purge, a.purge_proto),
        )
    }

    /// A route set from validated parts. `boot_extra` are more `ExecStart=` command lines
    /// for the boot unit (other modules' live state that must come back at boot).
    pub(crate) fn new(
        routes: Vec<Route>,
        absent: Vec<IpNet>,
        unit: Option<&str>,
        systemd_dir: &str,
        boot_extra: &[String],
    ) -> Result<RouteSet, ModuleError> {
        for (i, r) in routes.iter().enumerate() {
            if routes[..i].iter().any(|o| o.destination == r.destination) {
                return Err(ModuleError::args(
                    NAME,
                    format!("two routes to {}; keep one", r.destination),
                ));
            }
            if absent.contains(&r.destination) {
                return Err(ModuleError::args(
                    NAME,
                    format!("{} is both wanted and absent", r.destination),
                ));
            }
        }
        let unit = match unit {
            None => None,
            Some(name) => {
                args::file_name(NAME, "unit", name)?;
                Some(Service::build(serde_json::json!({
                    "name": name,
                    "unit": unit_text(&routes, boot_extra),
                    "enabled": true,
                    "systemd_dir": systemd_dir,
                }))?)
            }
        };
        Ok(RouteSet {
            routes,
            absent,
            unit,
            purge_within: None,
            purge_proto: None,
        })
    }

    /// Also deletes every other gateway route inside `net` (see `purge_within`).
    pub(crate) fn purging(mut self, net: Option<IpNet>, proto: Option<String>) -> RouteSet {
        self.purge_within = net;
        self.purge_proto = proto;
        self
    }

    /// Gateway routes inside `purge_within` that are neither wanted nor listed as absent.
    fn stale(&self, seen: &[SeenRoute]) -> Vec<(IpNet, IpAddr)> {
        let Some(purge) = self.purge_within else {
            return Vec::new();
        };
        let mut out: Vec<(IpNet, IpAddr)> = Vec::new();
        for s in seen {
            let Some(via) = s.via else { continue };
            if self.purge_proto.is_some() && s.proto != self.purge_proto {
                continue;
            }
            let known = self.routes.iter().any(|r| r.destination == s.destination)
                || self.absent.contains(&s.destination)
                || out.iter().any(|(d, _)| *d == s.destination);
            if !known && purge.contains(&s.destination) {
                out.push((s.destination, via));
            }
        }
        out
    }
}

/// The boot unit: one `ip route replace` per route (values are validated addresses,
/// networks and interface names, so they need no quoting in a unit file).
fn unit_text(routes: &[Route], extra: &[String]) -> String {
    let mut out = String::from(
        "# Managed by kprov (module route); changes here are overwritten.\n\
         [Unit]\n\
         Description=Static routes managed by kprov\n\
         Wants=network-online.target\n\
         After=network-online.target\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n",
    );
    for r in routes {
        out.push_str(&format!(
            "ExecStart=/sbin/ip route replace {}\n",
            r.describe()
        ));
    }
    for line in extra {
        out.push_str(&format!("ExecStart={line}\n"));
    }
    out.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    out
}

fn family(net: &IpNet) -> &'static str {
    if net.addr().is_ipv4() {
        "-4"
    } else {
        "-6"
    }
}

impl RouteSet {
    /// The routes of the families this task touches.
    fn fact(&self) -> RoutesFact {
        let all = self
            .routes
            .iter()
            .map(|r| r.destination)
            .chain(self.absent.iter().copied())
            .chain(self.purge_within);
        let (mut v4, mut v6) = (false, false);
        for net in all {
            if net.addr().is_ipv4() {
                v4 = true;
            } else {
                v6 = true;
            }
        }
        RoutesFact::new("route.", v4, v6)
    }
}

impl Module for RouteSet {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = self.unit.as_ref().map(|u| u.gather()).unwrap_or_default();
        out.push_str(&self.fact().gather());
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        // The boot unit's plan, once: its diff and its script are parts of this one.
        let unit = self.unit.as_ref().map(|u| u.plan(state)).transpose()?;
        let (unit_diff, unit_script) = match unit {
            Some(p) => (p.diff, p.script),
            None => (Diff::Unchanged, String::new()),
        };
        Ok(Plan::new(
            self.planned_diff(state, unit_diff)?,
            self.planned_script(state, unit_script),
        ))
    }
}

impl RouteSet {
    /// What would change.
    fn planned_diff(&self, state: &State, unit: Diff) -> Result<Diff, ModuleError> {
        let mut extra = Vec::new();
        let table = self.fact().parse(NAME, state)?;
        if !table.ip {
            extra.push("install iproute2 (no `ip` command on this host)".to_string());
        }
        let seen = table.routes;
        for r in &self.routes {
            let now: Vec<&SeenRoute> = seen
                .iter()
                .filter(|s| s.destination == r.destination)
                .collect();
            let ok = now.iter().any(|s| {
                s.unicast
                    && (r.via.is_none() || s.via == r.via)
                    && (r.dev.is_none() || s.dev == r.dev)
                    && (r.proto.is_none() || s.proto == r.proto)
            });
            if ok {
                continue;
            }
            match now.first() {
                None => extra.push(format!("add route {}", r.describe())),
                Some(s) => extra.push(format!(
                    "replace route {} (now{}{}{})",
                    r.describe(),
                    if s.unicast { "" } else { " not unicast" },
                    s.via.map(|v| format!(" via {v}")).unwrap_or_default(),
                    s.dev
                        .as_ref()
                        .map(|d| format!(" dev {d}"))
                        .unwrap_or_default()
                )),
            }
        }
        for net in &self.absent {
            if seen.iter().any(|s| s.destination == *net) {
                extra.push(format!("delete route {net}"));
            }
        }
        for (net, via) in self.stale(&seen) {
            extra.push(format!("delete route {net} via {via} (no host has it)"));
        }
        Ok(merge(vec![unit, fold(Vec::new(), extra)]))
    }

    /// The script that makes it so.
    fn planned_script(&self, state: &State, unit: String) -> String {
        let typed: String = TYPES
            .iter()
            .filter(|t| **t != "unicast")
            .map(|t| format!(" | {t}"))
            .collect();
        let mut out = unit;
        out.push_str(
            "command -v ip >/dev/null 2>&1 || { kp_fail 'no ip command on this host: install iproute2'; return; }\n",
        );
        for r in &self.routes {
            let d = quote(&r.destination.to_string());
            let words: Vec<String> = r.spec_words().iter().map(|w| quote(w)).collect();
            let mut checks = String::new();
            for (word, value) in [
                ("via", r.via.map(|v| v.to_string())),
                ("dev", r.dev.clone()),
                ("proto", r.proto.clone()),
            ] {
                if let Some(value) = value {
                    // Validated words (addresses, names): safe inside a case pattern.
                    checks.push_str(&format!(
                        "case \" $kp_r \" in *\" {word} {value} \"*) ;; *) kp_ok= ;; esac\n"
                    ));
                }
            }
            // `ip` prints `unreachable 10.0.0.0/8 …` for typed routes: those are replaced.
            out.push_str(&format!(
                "kp_r=$(ip -o {fam} route show table main exact {d} 2>/dev/null | head -n 1)\n\
                 kp_ok=1\n\
                 case ${{kp_r%% *}} in\n  \
                 ''{typed}) kp_ok= ;;\n\
                 esac\n\
                 {checks}\
                 if [ -z \"$kp_ok\" ]; then\n  \
                 kp_run {what} ip route replace {args} || return\n  \
                 kp_changed\n\
                 fi\n",
                fam = family(&r.destination),
                typed = typed,
                what = quote(&format!("ip route replace {}", r.describe())),
                args = words.join(" "),
            ));
        }
        let stale = match self.fact().parse(NAME, state) {
            Ok(table) => self.stale(&table.routes),
            Err(_) => Vec::new(),
        };
        for (net, _) in &stale {
            let d = quote(&net.to_string());
            out.push_str(&format!(
                "case $(ip -o {fam} route show table main exact {d} 2>/dev/null) in\n  \
                 *\" via \"*) kp_run {what} ip route del {d} || return\n    kp_changed ;;\n\
                 esac\n",
                fam = family(net),
                what = quote(&format!("ip route del {net}")),
            ));
        }
        for net in &self.absent {
            let d = quote(&net.to_string());
            out.push_str(&format!(
                "if [ -n \"$(ip -o {fam} route show table main exact {d} 2>/dev/null)\" ]; then\n  \
                 kp_run {what} ip route del {d} || return\n  \
                 kp_changed\n\
                 fi\n",
                fam = family(net),
                what = quote(&format!("ip route del {net}")),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::netns::Netns;
    use crate::util::testutil::fields;
    use crate::util::testutil::Planned as _;
    use serde_json::json;

    #[test]
    fn arguments_are_validated() {
        let bad = [
            json!({"routes": [{"destination": "10.244.1.1/24", "via": "10.0.0.2"}]}),
            json!({"routes": [{"destination": "nonsense", "via": "10.0.0.2"}]}),
            json!({"routes": [{"destination": "10.244.1.0/24", "via": "$(reboot)"}]}),
            json!({"routes": [{"destination": "10.244.1.0/24"}]}),
            json!({"routes": [{"destination": "10.244.1.0/24", "dev": "a b"}]}),
            json!({"routes": [{"destination": "10.244.1.0/24", "via": "fd00::1"}]}),
            json!({"routes": [{"destination": "10.1.0.0/16", "via": "10.0.0.2"}], "absent": ["10.1.0.0/16"]}),
            json!({"routes": [{"destination": "10.1.0.0/16", "via": "10.0.0.2"}], "unit": "../x"}),
            json!({}),
        ];
        for args in bad {
            assert!(RouteSet::build(args.clone()).is_err(), "{args}");
        }
        let err = RouteSet::build(
            json!({"routes": [{"destination": "10.244.1.1/24", "via": "10.0.0.2"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("10.244.1.0/24"), "{err}");
    }

    #[test]
    fn diff_reads_ip_output() {
        let m = RouteSet::build(json!({
            "routes": [
                {"destination": "10.244.1.0/24", "via": "10.88.0.12"},
                {"destination": "10.244.2.0/24", "via": "10.88.0.13"},
                {"destination": "10.9.9.9", "dev": "eth0"},
            ],
            "absent": ["10.244.9.0/24"],
        }))
        .unwrap();
        let routes = "default via 10.88.0.1 dev eth0 \n\
                      10.88.0.0/24 dev eth0 proto kernel scope link src 10.88.0.11 \n\
                      10.244.1.0/24 via 10.88.0.12 dev eth0 \n\
                      unreachable 10.244.2.0/24 \n\
                      10.9.9.9 dev eth0 scope link \n\
                      10.244.9.0/24 via 10.88.0.19 dev eth0 \n";
        let d = m
            .diff(&fields(&[("route.ip", "1"), ("route.v4", routes)]))
            .unwrap();
        assert_eq!(
            d,
            Diff::change(
                "replace route 10.244.2.0/24 via 10.88.0.13 (now not unicast); delete route 10.244.9.0/24"
            )
        );
        let done = "10.244.1.0/24 via 10.88.0.12 dev eth0 \n\
                    10.244.2.0/24 via 10.88.0.13 dev eth0 \n\
                    10.9.9.9 dev eth0 scope link \n";
        assert_eq!(
            m.diff(&fields(&[("route.ip", "1"), ("route.v4", done)]))
                .unwrap(),
            Diff::Unchanged
        );
    }

    #[test]
    fn unit_replays_the_routes_at_boot() {
        let m = RouteSet::build(json!({
            "routes": [{"destination": "10.244.1.0/24", "via": "10.88.0.12"}],
            "unit": "kprov-pod-routes",
        }))
        .unwrap();
        let text = unit_text(&m.routes, &[]);
        assert!(text.contains("ExecStart=/sbin/ip route replace 10.244.1.0/24 via 10.88.0.12\n"));
        assert!(text.contains("WantedBy=multi-user.target"));
        let Diff::Change { summary, .. } = m
            .diff(&fields(&[
                ("route.ip", "1"),
                ("route.v4", ""),
                ("f0.stat", "absent"),
            ]))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            summary,
            "create /etc/systemd/system/kprov-pod-routes.service; systemctl daemon-reload; \
             enable kprov-pod-routes.service; add route 10.244.1.0/24 via 10.88.0.12"
        );
    }

    #[test]
    fn real_routes_in_a_network_namespace() {
        let ns = Netns::new("kprov-t-route").expect("tests run as root with ip netns");
        let m = RouteSet::build(json!({
            "routes": [
                {"destination": "10.244.1.0/24", "via": "10.77.0.12"},
                {"destination": "10.244.2.0/24", "via": "10.77.0.13", "dev": "kp0"},
            ],
        }))
        .unwrap();
        let first = ns.gather(&m);
        assert!(m.diff(&first).unwrap().needs_apply());
        let r = ns.apply(&m, &first);
        assert!(r.ok() && r.changed, "{r:?}");
        let routes = ns.routes();
        assert!(
            routes.contains("10.244.1.0/24 via 10.77.0.12 dev kp0"),
            "{routes}"
        );
        assert!(
            routes.contains("10.244.2.0/24 via 10.77.0.13 dev kp0"),
            "{routes}"
        );
        let second = ns.gather(&m);
        assert_eq!(m.diff(&second).unwrap(), Diff::Unchanged);
        let again = ns.apply(&m, &second);
        assert!(again.ok() && !again.changed, "{again:?}");

        // A route with another next hop is replaced; a removed one is deleted.
        let m = RouteSet::build(json!({
            "routes": [{"destination": "10.244.1.0/24", "via": "10.77.0.99"}],
            "absent": ["10.244.2.0/24"],
        }))
        .unwrap();
        let state = ns.gather(&m);
        let r = ns.apply(&m, &state);
        assert!(r.ok() && r.changed, "{r:?}");
        let routes = ns.routes();
        assert!(routes.contains("10.244.1.0/24 via 10.77.0.99"), "{routes}");
        assert!(!routes.contains("10.244.2.0/24"), "{routes}");
        assert_eq!(m.diff(&ns.gather(&m)).unwrap(), Diff::Unchanged);

        // purge_within: a gateway route in the network that nobody wants any more goes;
        // wanted routes and connected routes (no `via`) stay.
        std::process::Command::new("ip")
            .args([
                "-n",
                &ns.0,
                "route",
                "add",
                "10.244.9.0/24",
                "via",
                "10.77.0.9",
            ])
            .status()
            .unwrap();
        let m = RouteSet::build(json!({
            "routes": [{"destination": "10.244.1.0/24", "via": "10.77.0.99"}],
            "purge_within": "10.0.0.0/8",
        }))
        .unwrap();
        let state = ns.gather(&m);
        assert_eq!(
            m.diff(&state).unwrap(),
            Diff::change("delete route 10.244.9.0/24 via 10.77.0.9 (no host has it)")
        );
        let r = ns.apply(&m, &state);
        assert!(r.ok() && r.changed, "{r:?}");
        let routes = ns.routes();
        assert!(!routes.contains("10.244.9.0/24"), "{routes}");
        assert!(routes.contains("10.244.1.0/24 via 10.77.0.99"), "{routes}");
        assert!(routes.contains("10.77.0.0/24 dev kp0"), "{routes}");
        assert_eq!(m.diff(&ns.gather(&m)).unwrap(), Diff::Unchanged);

        // A next hop that cannot be reached fails with ip's message.
        let m = RouteSet::build(json!({
            "routes": [{"destination": "10.244.3.0/24", "via": "192.0.2.1"}],
        }))
        .unwrap();
        let state = ns.gather(&m);
        let r = ns.apply(&m, &state);
        let failed = r.failed.expect("unreachable gateway fails");
        assert!(
            failed.contains("ip route replace 10.244.3.0/24 via 192.0.2.1"),
            "{failed}"
        );
    }
}
