//! Malformed inventories, kprov's shape and Ansible's: every problem is reported with
//! file:line:column, the key, the message and the hint (one test per fixture under
//! `fixtures/inventory/`).

mod common;

use common::{assert_diagnostics, fixture};

macro_rules! inventory_error {
    ($name:ident, [$($expected:expr),+ $(,)?]) => {
        #[test]
        fn $name() {
            let path = fixture(concat!("inventory/", stringify!($name), ".yaml"));
            let diagnostics =
                kprov_engine::inventory::load(&path).expect_err("the inventory must be rejected");
            assert_diagnostics(&diagnostics, &path, &[$($expected),+]);
        }
    };
}

inventory_error!(
    ansible_bad_become,
    [(
        3,
        21,
        "all.vars.ansible_become",
        "expected true or false, found `maybe`",
        Some("write true or false (yes/no and on/off are accepted too)")
    ),]
);

inventory_error!(
    ansible_bad_port,
    [(
        5,
        21,
        "all.hosts.master.ansible_port",
        "`twenty-two` is not a port number such as 22",
        None
    ),]
);

inventory_error!(
    ansible_duplicate_address,
    [(
        4,
        28,
        "all.hosts.node1.ansible_host",
        "address 10.0.0.10 is also used by host `master`",
        Some("every host needs its own address; fix the copy-pasted one")
    ),]
);

inventory_error!(ansible_fqdn_host_name, [
    (5, 9, "all.children.kube_control_plane.hosts.\"cp1.example.com\"", "invalid host name `cp1.example.com`: expected a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit", Some("use a short name and keep the full one as the address: `cp1: { ansible_host: cp1.example.com }`")),
]);

inventory_error!(
    ansible_hosts_as_list,
    [
        (
            3,
            8,
            "all.hosts.m",
            "expected a mapping, found the number `5`",
            None
        ),
        (
            6,
            14,
            "all.children.kube_control_plane.hosts",
            "expected a mapping, found a list",
            Some("write `name: value` entries (a mapping), not `- item` lines")
        ),
    ]
);

inventory_error!(
    ansible_missing_control_plane,
    [(
        4,
        3,
        "all.children",
        "no `kube_control_plane` group: at least one host must run the control plane",
        Some("add `kube_control_plane: { hosts: { node1: } }` under `all.children:`")
    ),]
);

inventory_error!(
    ansible_unknown_child,
    [(
        13,
        17,
        "all.children.k8s_cluster.children.kube_nod",
        "unknown group `kube_nod` in the children of `k8s_cluster`",
        Some("did you mean `kube_node`?")
    ),]
);

inventory_error!(
    ansible_unknown_group_key,
    [(
        6,
        7,
        "all.children.kube_control_plane.host",
        "unknown key `host` — did you mean `hosts`?",
        Some("allowed keys here: children, hosts, vars")
    ),]
);

inventory_error!(
    bad_address,
    [
        (
            2,
            22,
            "hosts.master.address",
            "`10.0.0.300` is neither an IP address nor a DNS name",
            Some("write an address such as 192.168.1.10 or a name such as node1.example.com")
        ),
        (
            3,
            21,
            "hosts.node1.address",
            "`node 1.example.com` is neither an IP address nor a DNS name",
            Some("write an address such as 192.168.1.10 or a name such as node1.example.com")
        ),
    ]
);

inventory_error!(
    bad_host_key_checking,
    [(
        2,
        22,
        "ssh.host_key_checking",
        "`accept_new` is not a valid value; expected one of `strict`, `accept-new`, `off`",
        Some("did you mean `accept-new`?")
    ),]
);

inventory_error!(
    unverified_host_keys,
    [
        (
            2,
            22,
            "ssh.host_key_checking",
            "`host_key_checking: off` would connect without verifying host keys",
            Some(kprov_engine::inventory::UNVERIFIED_HOST_KEY_HINT)
        ),
        (
            4,
            52,
            "hosts.master.host_key_checking",
            "`host_key_checking: accept-new` would trust any host key it has not seen before",
            Some(kprov_engine::inventory::UNVERIFIED_HOST_KEY_HINT)
        ),
    ]
);

inventory_error!(
    ansible_unverified_host_keys,
    [
        (
            3,
            32,
            "all.vars.ansible_host_key_checking",
            "`ansible_host_key_checking: false` would connect without verifying host keys",
            Some(kprov_engine::inventory::UNVERIFIED_HOST_KEY_HINT)
        ),
        (
            7,
            32,
            "all.hosts.master.ansible_ssh_common_args",
            "`-o StrictHostKeyChecking=no` would connect without verifying host keys",
            Some(kprov_engine::inventory::UNVERIFIED_HOST_KEY_HINT)
        ),
    ]
);

inventory_error!(bad_lab, [
    (1, 14, "lab.name", "`My_Lab` is not a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit", Some("did you mean `my-lab`?")),
    (1, 29, "lab.hosts", "the number `0` is too small (the minimum is 1)", None),
]);

inventory_error!(
    bad_port,
    [
        (
            2,
            9,
            "ssh.port",
            "the number `0` is too small (the minimum is 1)",
            Some("a TCP port is a number from 1 to 65535")
        ),
        (
            4,
            39,
            "hosts.master.port",
            "the number `70000` is too large (the maximum is 65535)",
            Some("a TCP port is a number from 1 to 65535")
        ),
    ]
);

inventory_error!(
    become_yes_string,
    [(
        3,
        11,
        "ssh.become",
        "expected true or false, found the string `yes`",
        Some("write true or false, without quotes")
    ),]
);

inventory_error!(
    cluster_spec_given,
    [(
        2,
        1,
        "kubernetes_version",
        "this file is a cluster spec, not an inventory",
        Some("pass it as the spec, and the inventory (hosts.yaml) with `-i`")
    ),]
);

inventory_error!(
    duplicate_address,
    [(
        4,
        21,
        "hosts.node2.address",
        "address 10.0.0.11 is also used by host `node1`",
        Some("every host needs its own address; fix the copy-pasted one")
    ),]
);

inventory_error!(
    duplicate_host,
    [(
        4,
        3,
        "hosts.node1",
        "duplicate key `node1` (first defined at line 3, column 3)",
        Some("keep one of them; a later duplicate is ignored")
    ),]
);

inventory_error!(
    duplicate_yaml_key,
    [(
        4,
        5,
        "hosts.master.address",
        "duplicate key `address` (first defined at line 3, column 5)",
        Some("keep one of them; a later duplicate is ignored")
    ),]
);

inventory_error!(
    empty_masters,
    [(
        5,
        3,
        "groups.masters",
        "group `masters` has no hosts: at least one host must run the control plane",
        Some("list a host in it, e.g. `master`")
    ),]
);

inventory_error!(
    group_cycle,
    [
        (
            5,
            19,
            "groups.a.children[0]",
            "group `a` contains itself through `children` (a → b → a)",
            Some("remove `b` from these children")
        ),
        (
            6,
            19,
            "groups.b.children[0]",
            "group `b` contains itself through `children` (b → a → b)",
            Some("remove `a` from these children")
        ),
    ]
);

inventory_error!(invalid_host_name, [
    (3, 3, "hosts.Node_1", "invalid host name `Node_1`: expected a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit", Some("rename it, e.g. `node-1` (the name becomes the Kubernetes node name)")),
]);

inventory_error!(
    lab_and_hosts,
    [(
        1,
        1,
        "lab",
        "`lab:` and `hosts:` cannot be combined",
        Some("remove `hosts:` to let kprov create lab hosts, or remove `lab:` to use your own")
    ),]
);

inventory_error!(
    missing_masters,
    [(
        4,
        1,
        "groups",
        "no `masters` group: at least one host must run the control plane",
        Some("add `masters: { hosts: [master] }` under `groups:`")
    ),]
);

inventory_error!(
    no_hosts,
    [(
        3,
        1,
        "hosts",
        "the inventory lists no hosts",
        Some("add hosts under `hosts:`, or use `lab: { hosts: 3 }` for throw-away lab hosts")
    ),]
);

inventory_error!(
    tab_indentation,
    [(
        4,
        2,
        "",
        "invalid YAML: tabs disallowed within this context (block indentation)",
        Some("check the indentation and quoting on this line and the one before")
    ),]
);

inventory_error!(
    unknown_child_group,
    [(
        6,
        25,
        "groups.cluster.children[1]",
        "unknown group `nodez` in the children of `cluster`",
        Some("define the group first, or remove it from `children`")
    ),]
);

inventory_error!(
    unknown_group_member,
    [(
        9,
        9,
        "groups.nodes.hosts[1]",
        "unknown host `nod2` in group `nodes`",
        Some("define the host under `hosts:` first")
    ),]
);

inventory_error!(unknown_key_typo, [
    (2, 3, "hosts.master.address", "missing required key `address`", Some("add `address: \"192.168.1.10\"`")),
    (3, 5, "hosts.master.adress", "unknown key `adress` — did you mean `address`?", Some("allowed keys here: address, become, connect_timeout, host_key_checking, identity_file, known_hosts_file, port, proxy_jump, user, vars")),
]);

inventory_error!(
    wrong_types,
    [
        (
            3,
            38,
            "hosts.node1.vars",
            "expected a mapping, found a list",
            Some("write `name: value` entries (a mapping), not `- item` lines")
        ),
        (
            6,
            19,
            "groups.nodes.hosts",
            "expected a list, found the string `node1`",
            Some("write a list: `[a, b]` or one `- item` per line")
        ),
    ]
);
