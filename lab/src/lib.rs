//! Throw-away lab hosts (see ../shared/specs/lab.md).
