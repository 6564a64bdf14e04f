//! Routes as tasks write them (`route`, `cni_bridge`), validated: destinations, next hops,
//! interfaces and routing protocols.

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::ModuleError;

/// One route as written in YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteArg {
    /// Destination network (`10.244.1.0/24`), address (`/32` implied) or `default`.
    pub destination: String,
    /// Next hop address.
    pub via: Option<String>,
    /// Outgoing interface.
    pub dev: Option<String>,
    /// Routing protocol the route is marked with: `static`, a name from rt_protos or a
    /// number (default: ip's own, `boot`).
    pub proto: Option<String>,
}

/// One wanted route, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub destination: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub proto: Option<String>,
}

impl Route {
    /// The arguments of `ip route replace` after the destination.
    pub(crate) fn spec_words(&self) -> Vec<String> {
        let mut out = vec![self.destination.to_string()];
        if let Some(via) = self.via {
            out.push("via".into());
            out.push(via.to_string());
        }
        if let Some(dev) = &self.dev {
            out.push("dev".into());
            out.push(dev.clone());
        }
        if let Some(proto) = &self.proto {
            out.push("proto".into());
            out.push(proto.clone());
        }
        out
    }

    pub(crate) fn describe(&self) -> String {
        self.spec_words().join(" ")
    }
}

/// Parses a destination: a network with no host bits, an address (a host route) or
/// `default`.
pub(crate) fn destination(module: &str, text: &str) -> Result<IpNet, ModuleError> {
    let text = text.trim();
    if text == "default" {
        return Ok(IpNet::V4(Default::default()));
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        ModuleError::args(
            module,
            format!(
                "destination `{text}` is not a network like 10.244.1.0/24, an address or `default`"
            ),
        )
    })?;
    if net.trunc() != net {
        return Err(ModuleError::args(
            module,
            format!(
                "destination `{text}` has host bits set; write the network address {}",
                net.trunc()
            ),
        ));
    }
    Ok(net)
}

/// Checks an interface name (what the kernel accepts: up to 15 characters, no `/` or blanks).
pub(crate) fn interface(module: &str, field: &str, name: &str) -> Result<(), ModuleError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ModuleError::args(
            module,
            format!(
                "{field} `{name}` is not an interface name (up to 15 letters, digits, - _ . @)"
            ),
        ))
    }
}

/// Checks a routing protocol: a name from rt_protos or a number.
pub(crate) fn protocol(module: &str, proto: &str) -> Result<(), ModuleError> {
    let ok = !proto.is_empty()
        && proto.len() <= 15
        && proto.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ModuleError::args(
            module,
            format!("proto `{proto}` is not a routing protocol like static or 42"),
        ))
    }
}

/// Validates one route argument.
pub(crate) fn route(module: &str, r: &RouteArg) -> Result<Route, ModuleError> {
    let dest = destination(module, &r.destination)?;
    let via = match &r.via {
        None => None,
        Some(v) => Some(v.trim().parse::<IpAddr>().map_err(|_| {
            ModuleError::args(
                module,
                format!("via `{v}` (route to {dest}) is not an IP address"),
            )
        })?),
    };
    if let Some(dev) = &r.dev {
        interface(module, "dev", dev)?;
    }
    if let Some(proto) = &r.proto {
        protocol(module, proto)?;
    }
    if via.is_none() && r.dev.is_none() {
        return Err(ModuleError::args(
            module,
            format!("route to {dest}: give `via` (next hop), `dev` or both"),
        ));
    }
    if via.is_some_and(|v| v.is_ipv4() != dest.addr().is_ipv4()) {
        return Err(ModuleError::args(
            module,
            format!("route to {dest}: via is of another IP family"),
        ));
    }
    Ok(Route {
        destination: dest,
        via,
        dev: r.dev.clone(),
        proto: r.proto.clone(),
    })
}
