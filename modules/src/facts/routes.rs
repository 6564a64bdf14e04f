//! The main routing table, per IP family, as `ip -o route show table main` prints it.
//! Fields: `PREFIXip` (`1` when the `ip` command exists), `PREFIXv4`, `PREFIXv6`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Fact, Prefix};
use crate::{ModuleError, State};

/// Route types `ip` prints before the destination; all but `unicast` carry no traffic
/// to a next hop.
pub(crate) const TYPES: &[&str] = &[
    "unicast",
    "unreachable",
    "blackhole",
    "prohibit",
    "throw",
    "local",
    "broadcast",
    "multicast",
    "nat",
    "anycast",
];

/// The routes of the families asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutesFact {
    prefix: Prefix,
    v4: bool,
    v6: bool,
}

/// A gathered [`RoutesFact`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteTable {
    /// The host has the `ip` command.
    pub ip: bool,
    /// The routes of the main table, IPv4 first.
    pub routes: Vec<SeenRoute>,
}

/// A route as `ip -o route show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeenRoute {
    /// Not of another type (`unreachable`, `blackhole`, …).
    pub unicast: bool,
    pub destination: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub proto: Option<String>,
}

impl RoutesFact {
    pub(crate) fn new(prefix: impl Into<String>, v4: bool, v6: bool) -> RoutesFact {
        RoutesFact {
            prefix: Prefix::new(prefix),
            v4,
            v6,
        }
    }
}

impl Fact for RoutesFact {
    type Value = RouteTable;

    fn gather(&self) -> String {
        let p = |name: &str| self.prefix.field(name);
        let mut out = format!(
            "if command -v ip >/dev/null 2>&1; then kp_word {} 1; fi\n",
            p("ip")
        );
        for (on, name, flag) in [(self.v4, "v4", "-4"), (self.v6, "v6", "-6")] {
            if on {
                out.push_str(&format!(
                    "kp_field {} \"$(ip -o {flag} route show table main 2>/dev/null)\"\n",
                    p(name)
                ));
            }
        }
        out
    }

    fn parse(&self, _module: &str, state: &State) -> Result<RouteTable, ModuleError> {
        let mut routes = Vec::new();
        for (name, v6) in [("v4", false), ("v6", true)] {
            if let Some(text) = state.text(&self.prefix.field(name)) {
                routes.extend(text.lines().filter_map(|l| parse_line(l, v6)));
            }
        }
        Ok(RouteTable {
            ip: state.flag(&self.prefix.field("ip")),
            routes,
        })
    }
}

/// One line of `ip -o route show`; `None` for what is not a route to a network.
fn parse_line(line: &str, v6: bool) -> Option<SeenRoute> {
    let mut words = line.split_whitespace().peekable();
    let mut unicast = true;
    if let Some(first) = words.peek() {
        if TYPES.contains(first) {
            unicast = *first == "unicast";
            words.next();
        }
    }
    let dest = words.next()?;
    let destination = if dest == "default" {
        if v6 {
            IpNet::V6(Default::default())
        } else {
            IpNet::V4(Default::default())
        }
    } else if let Ok(addr) = dest.parse::<IpAddr>() {
        IpNet::from(addr)
    } else {
        dest.parse().ok()?
    };
    let (mut via, mut dev, mut proto) = (None, None, None);
    let rest: Vec<&str> = words.collect();
    for pair in rest.windows(2) {
        match pair[0] {
            "via" => via = pair[1].parse().ok(),
            "dev" => dev = Some(pair[1].to_string()),
            "proto" => proto = Some(pair[1].to_string()),
            _ => {}
        }
    }
    Some(SeenRoute {
        unicast,
        destination,
        via,
        dev,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::fields;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn lines_of_ip_route_show() {
        let r = parse_line("10.244.1.0/24 via 10.88.0.12 dev eth0 proto static ", false).unwrap();
        assert_eq!(
            r,
            SeenRoute {
                unicast: true,
                destination: net("10.244.1.0/24"),
                via: Some("10.88.0.12".parse().unwrap()),
                dev: Some("eth0".into()),
                proto: Some("static".into()),
            }
        );
        let r = parse_line("unreachable 10.244.2.0/24 ", false).unwrap();
        assert!(!r.unicast && r.via.is_none() && r.dev.is_none());
        let r = parse_line("10.9.9.9 dev eth0 scope link ", false).unwrap();
        assert_eq!(r.destination, net("10.9.9.9/32"));
        assert_eq!(
            parse_line("default via 10.88.0.1 dev eth0", false)
                .unwrap()
                .destination,
            net("0.0.0.0/0")
        );
        assert_eq!(
            parse_line("default via fe80::1 dev eth0 metric 1024", true)
                .unwrap()
                .destination,
            net("::/0")
        );
        assert_eq!(parse_line("", false), None);
        assert_eq!(parse_line("garbage here", false), None);
    }

    #[test]
    fn gathers_this_machines_routes() {
        let fact = RoutesFact::new("r.", true, true);
        let r = crate::util::testutil::run_fragment(&fact.gather());
        assert!(r.ok(), "{r:?}");
        assert!(fact.parse("t", &r.state()).unwrap().ip);
    }

    #[test]
    fn fields_are_named_after_the_prefix() {
        let a = RoutesFact::new("route.", true, false);
        let b = RoutesFact::new("dst.", true, true);
        assert!(a.gather().contains("kp_field route.v4 "));
        assert!(!a.gather().contains("route.v6"));
        assert!(b.gather().contains("kp_word dst.ip 1"));
        assert!(b.gather().contains("kp_field dst.v6 \"$(ip -o -6 route"));
        let s = fields(&[
            ("route.ip", "1"),
            ("route.v4", "10.1.0.0/16 via 10.0.0.1 dev eth0\n"),
            ("dst.v6", "fd00::/64 dev eth1 proto kernel\n"),
        ]);
        let ra = a.parse("t", &s).unwrap();
        assert!(ra.ip);
        assert_eq!(ra.routes.len(), 1);
        assert_eq!(ra.routes[0].destination, net("10.1.0.0/16"));
        let rb = b.parse("t", &s).unwrap();
        assert!(!rb.ip);
        assert_eq!(rb.routes.len(), 1);
        assert_eq!(rb.routes[0].dev.as_deref(), Some("eth1"));
    }
}
