//! "Did you mean …?" for misspelt keys and values.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let lower = c.to_lowercase();
            let distance = strsim::damerau_levenshtein(&input_lower, &lower);
            // A prefix (`cri` for `cri-o`) counts as one edit.
            let prefix = input_lower.len() >= 3 && lower.starts_with(&input_lower);
            (if prefix { distance.min(1) } else { distance }, c)
        })
        .filter(|(distance, c)| {
            let limit = (c.chars().count().max(input.chars().count()) / 3).max(1);
            *distance <= limit
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let keys = ["sandbox_image", "kind", "cgroup_driver"];
        assert_eq!(closest("sandbox_imag", keys), Some("sandbox_image"));
        assert_eq!(closest("knid", keys), Some("kind"));
        assert_eq!(
            closest("containerd", ["kprov-agent", "containerd", "cri-o"]),
            Some("containerd")
        );
        assert_eq!(closest("zzzzzz", keys), None);
        assert_eq!(
            closest("cri", ["kprov-agent", "containerd", "cri-o"]),
            Some("cri-o")
        );
    }
}
