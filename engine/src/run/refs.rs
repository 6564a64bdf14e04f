//! Finds which other hosts' registered values a task consumes (`hostvars…`).

/// One `hostvars[HOST].VAR` reference; `host` is `None` when it is computed
/// (e.g. `hostvars[groups.masters[0]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostVarRef {
    pub host: Option<String>,
    pub var: String,
}

/// Every `hostvars` reference in one template or expression.
pub fn in_text(text: &str, out: &mut Vec<HostVarRef>) {
    let mut rest = text;
    while let Some(pos) = rest.find("hostvars") {
        let before_ok = rest[..pos]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        rest = &rest[pos + "hostvars".len()..];
        if !before_ok {
            continue;
        }
        let Some((host, after)) = accessor(rest) else {
            continue;
        };
        let Some((var, after)) = accessor(after) else {
            continue;
        };
        if let Accessor::Name(var) = var {
            out.push(HostVarRef {
                host: match host {
                    Accessor::Name(h) => Some(h),
                    Accessor::Computed => None,
                },
                var,
            });
        }
        rest = after;
    }
}

enum Accessor {
    Name(String),
    Computed,
}

/// Parses `.name`, `['name']`, `["name"]` or `[expression]` at the start of `s`.
fn accessor(s: &str) -> Option<(Accessor, &str)> {
    let s = s.trim_start();
    if let Some(after) = s.strip_prefix('.') {
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        return (end > 0).then(|| (Accessor::Name(after[..end].to_string()), &after[end..]));
    }
    let inner = s.strip_prefix('[')?;
    let mut depth = 1usize;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let key = inner[..end].trim();
    let rest = &inner[end + 1..];
    let quoted = ['\'', '"'].iter().find_map(|q| {
        key.strip_prefix(*q)
            .and_then(|k| k.strip_suffix(*q))
            .filter(|k| !k.contains(['\'', '"']))
    });
    Some((
        match quoted {
            Some(name) => Accessor::Name(name.to_string()),
            None => Accessor::Computed,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<HostVarRef> {
        let mut out = Vec::new();
        in_text(text, &mut out);
        out
    }

    #[test]
    fn static_and_computed_hosts() {
        assert_eq!(
            refs("{{ hostvars.master.join.token }} {{ hostvars['node-1'][\"x\"] }}"),
            vec![
                HostVarRef {
                    host: Some("master".into()),
                    var: "join".into()
                },
                HostVarRef {
                    host: Some("node-1".into()),
                    var: "x".into()
                },
            ]
        );
        assert_eq!(
            refs("{{ hostvars[groups.masters[0]].ca_hash.stdout }}"),
            vec![HostVarRef {
                host: None,
                var: "ca_hash".into()
            }]
        );
        assert!(refs("{{ myhostvars.a.b }} hostvars").is_empty());
    }
}
