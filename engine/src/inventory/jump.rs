//! Jump hosts: `proxy_jump` (kprov), `-J`/ProxyCommand in `ansible_ssh_common_args`
//! (Ansible) and kubespray's `bastion` group, turned into the host's ssh options.

use super::Host;
use crate::transport::Target;

/// Sets how `host` is reached: through `jump` (an inventory host's name, `[user@]host[:port]`
/// or `none`), else as its ssh options say, else through `bastion` when there is one.
pub(super) fn apply(
    host: &mut Host,
    jump: Option<&str>,
    known: &[Host],
    bastion: Option<&Host>,
) -> Result<(), String> {
    let has_proxy = host.ssh_options.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("ProxyCommand") || k.eq_ignore_ascii_case("ProxyJump")
    });
    match jump {
        Some("none") => {}
        Some(name) => {
            if let Some(via) = known.iter().find(|h| h.name == name) {
                if via.name == host.name {
                    return Err(format!("host `{}` cannot be its own jump host", host.name));
                }
                host.ssh_options
                    .push(("ProxyCommand".into(), Target::for_host(via).proxy_command()));
            } else if is_destination(name) {
                host.ssh_options
                    .push(("ProxyJump".into(), name.to_string()));
            } else {
                return Err(format!(
                    "proxy_jump `{name}` is neither an inventory host nor `[user@]host[:port]`"
                ));
            }
        }
        None if has_proxy => {}
        None => {
            if let Some(via) = bastion {
                host.ssh_options
                    .push(("ProxyCommand".into(), Target::for_host(via).proxy_command()));
            }
        }
    }
    Ok(())
}

/// `[user@]host[:port]`, comma-separated for a chain, as `ssh -J` takes it.
fn is_destination(text: &str) -> bool {
    text.split(',').all(|hop| {
        let hop = hop.rsplit_once('@').map_or(hop, |(_, h)| h);
        let host = match hop.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => hop,
        };
        !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
            })
    })
}

#[cfg(test)]
mod tests {
    use super::is_destination;

    #[test]
    fn destinations_like_ssh_j() {
        assert!(is_destination("bastion.example.com"));
        assert!(is_destination("me@10.0.0.9:2222,other"));
        assert!(!is_destination("a b"));
        assert!(!is_destination("x;rm"));
    }
}
