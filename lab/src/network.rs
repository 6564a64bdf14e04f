//! The lab network: a bridge on the machine and one veth pair per host into its namespace.

use crate::cmd::{have_tool, Cmd};
use crate::error::LabError;
use crate::layout::{HostLayout, Layout};

const IP_HINT: &str = "check `ip link` / `ip netns` for leftovers and run `kprov lab down` first";

/// Creates the lab bridge with the gateway address (no-op when it exists).
pub(crate) fn ensure_bridge(layout: &Layout) -> Result<(), LabError> {
    let bridge = layout.bridge();
    if !link_exists(&bridge) {
        Cmd::new(["ip", "link", "add", &bridge, "type", "bridge"])
            .hint(IP_HINT)
            .run()?;
    }
    let address = format!("{}/24", layout.gateway());
    Cmd::new(["ip", "addr", "replace", &address, "dev", &bridge])
        .hint(IP_HINT)
        .run()?;
    Cmd::new(["ip", "link", "set", &bridge, "up"])
        .hint(IP_HINT)
        .run()?;
    allow_forwarding(&bridge)
}

/// With `br_netfilter` loaded, frames between two ports of a bridge pass the iptables
/// FORWARD chain; a DROP policy there (Docker sets one) would cut hosts off from each
/// other. One ACCEPT rule for traffic within the lab bridge prevents that.
fn allow_forwarding(bridge: &str) -> Result<(), LabError> {
    if !have_tool("iptables") {
        return Ok(());
    }
    let rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"];
    let check: Vec<&str> = ["iptables", "-w", "-C"]
        .iter()
        .chain(&rule)
        .copied()
        .collect();
    if Cmd::new(check).run().is_ok() {
        return Ok(());
    }
    let insert: Vec<&str> = ["iptables", "-w", "-I"]
        .iter()
        .chain(&rule)
        .copied()
        .collect();
    Cmd::new(insert)
        .hint("could not let traffic pass within the lab bridge; check `iptables -S FORWARD`")
        .run()
        .map(drop)
}

/// Removes the rule [`allow_forwarding`] added (every copy of it).
fn remove_forwarding(bridge: &str) {
    if !have_tool("iptables") {
        return;
    }
    let rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"];
    let delete: Vec<&str> = ["iptables", "-w", "-D"]
        .iter()
        .chain(&rule)
        .copied()
        .collect();
    for _ in 0..16 {
        if Cmd::new(delete.clone()).run().is_err() {
            break;
        }
    }
}

/// Removes the lab bridge if present.
pub(crate) fn remove_bridge(layout: &Layout) -> Result<(), LabError> {
    let bridge = layout.bridge();
    remove_forwarding(&bridge);
    if link_exists(&bridge) {
        Cmd::new(["ip", "link", "del", &bridge])
            .hint(IP_HINT)
            .run()?;
    }
    Ok(())
}

/// (Re)creates the host's network namespace and veth pair: `eth0` inside with the host's
/// address and a default route via the bridge.
pub(crate) fn create_host(layout: &Layout, host: &HostLayout) -> Result<(), LabError> {
    remove_host(host)?;
    let ns = host.netns.as_str();
    let run = |argv: &[&str]| Cmd::new(argv.iter().copied()).hint(IP_HINT).run();
    run(&["ip", "netns", "add", ns])?;
    run(&[
        "ip", "link", "add", &host.veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ])?;
    run(&[
        "ip",
        "link",
        "set",
        &host.veth,
        "master",
        &layout.bridge(),
        "up",
    ])?;
    let address = format!("{}/24", host.address);
    run(&["ip", "-n", ns, "addr", "add", &address, "dev", "eth0"])?;
    run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    run(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
    let gateway = layout.gateway().to_string();
    run(&["ip", "-n", ns, "route", "add", "default", "via", &gateway])?;
    Ok(())
}

/// Removes the host's namespace and veth (each only if present).
pub(crate) fn remove_host(host: &HostLayout) -> Result<(), LabError> {
    if host.netns_path().exists() {
        Cmd::new(["ip", "netns", "del", &host.netns])
            .hint(IP_HINT)
            .run()?;
    }
    // Deleting the namespace deletes the veth pair too, asynchronously: only a veth that
    // is still there afterwards is an error.
    if link_exists(&host.veth) {
        let deleted = Cmd::new(["ip", "link", "del", &host.veth])
            .hint(IP_HINT)
            .run();
        if deleted.is_err() && link_exists(&host.veth) {
            deleted?;
        }
    }
    Ok(())
}

/// Whether a network interface of that name exists on the machine.
pub(crate) fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}
