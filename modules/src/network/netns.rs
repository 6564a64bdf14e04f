//! Test harness: a network namespace to run route and iptables scripts in.

use crate::util::testutil::{run_stdin, Planned as _};
use crate::{apply_script, gather_script, parse_output, Module, State, TaskReport};

/// A network namespace for one test with a veth pair `kp0` (10.77.0.2/24) / `kp1`, both
/// up, removed when dropped. `None` when this machine cannot make one.
pub(crate) struct Netns(pub String);

impl Netns {
    pub(crate) fn new(name: &str) -> Option<Netns> {
        let sh = |cmd: &str| {
            std::process::Command::new("sh")
                .args(["-c", cmd])
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        let ok = sh(&format!(
            "ip netns add {name} && ip -n {name} link add kp0 type veth peer name kp1 && \
             ip -n {name} addr add 10.77.0.2/24 dev kp0 && \
             ip -n {name} link set kp1 up && ip -n {name} link set kp0 up && \
             ip -n {name} link set lo up"
        ));
        if !ok {
            let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
            return None;
        }
        Some(Netns(name.to_string()))
    }

    pub(crate) fn run(&self, script: &str) -> TaskReport {
        let out = run_stdin(&["ip", "netns", "exec", &self.0, "sh"], script);
        let mut reports = parse_output(&out.stdout).expect("parsable output");
        reports.remove(&7).unwrap_or_else(|| {
            panic!(
                "no report; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub(crate) fn gather(&self, m: &dyn Module) -> State {
        let r = self.run(&gather_script(&[(7, m)]));
        assert!(r.ok(), "gather failed: {:?}", r.failed);
        r.state()
    }

    pub(crate) fn apply(&self, m: &dyn Module, state: &State) -> TaskReport {
        self.run(&apply_script(&[(7, &m.apply(state))]))
    }

    pub(crate) fn routes(&self) -> String {
        let out = std::process::Command::new("ip")
            .args(["-n", &self.0, "-o", "route", "show"])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}
