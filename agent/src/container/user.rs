//! Resolving `user[:group]` (names or numbers) against the container's /etc files.

use std::path::Path;

/// Resolves `spec` (`uid`, `name`, `uid:gid`, `name:group`) in `rootfs` to (uid, gid).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32), String> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => {
            let gid = lookup(&passwd, |f| f.get(2) == Some(&u))
                .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
                .unwrap_or(0);
            (n, gid)
        }
        Err(_) => {
            let f = lookup(&passwd, |f| f.first() == Some(&u))
                .ok_or_else(|| format!("user {u:?} is not in the image's /etc/passwd"))?;
            let uid = f.get(2).and_then(|x| x.parse().ok()).unwrap_or(0);
            let gid = f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0);
            (uid, gid)
        }
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                lookup(&group, |f| f.first() == Some(&g))
                    .and_then(|f| f.get(2).and_then(|x| x.parse().ok()))
                    .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group"))?
            }
        },
    };
    Ok((uid, gid))
}

fn lookup<'a>(text: &'a str, pred: impl Fn(&Vec<&'a str>) -> bool) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| pred(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(d.path(), "web").unwrap(), (33, 44));
        assert_eq!(resolve_user(d.path(), "33").unwrap(), (33, 44));
        assert_eq!(resolve_user(d.path(), "1000:7").unwrap(), (1000, 7));
        assert_eq!(resolve_user(d.path(), "web:staff").unwrap(), (33, 50));
        assert!(resolve_user(d.path(), "nobody").is_err());
    }
}
