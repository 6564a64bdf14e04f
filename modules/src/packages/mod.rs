//! Software packages and the repositories they come from (apt, dnf/yum).

pub(crate) mod apt_repo;
pub(crate) mod package;
pub(crate) mod yum_repo;
