//! Small value types of the cluster spec: CIDRs, the Kubernetes version, secrets.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;

use crate::validate::{formats, patterns};

/// An IP network in CIDR notation (`10.244.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = ipnet::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = patterns::string(formats::CIDR);
        schema.insert(
            "examples".into(),
            json!(["10.244.0.0/16", "fd00:10:244::/56"]),
        );
        schema
    }
}

/// A Kubernetes release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (28 for 1.28.2).
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

/// Oldest supported minor release (1.28).
pub const MIN_MINOR: u32 = 28;
/// Newest supported minor release (1.31).
pub const MAX_MINOR: u32 = 31;

impl KubernetesVersion {
    /// True for the releases kprov supports (1.28–1.31).
    pub fn is_supported(&self) -> bool {
        self.major == 1 && (MIN_MINOR..=MAX_MINOR).contains(&self.minor)
    }
}

impl FromStr for KubernetesVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        formats::parse_version(s)
            .map(|(major, minor, patch)| KubernetesVersion {
                major,
                minor,
                patch,
            })
            .ok_or_else(|| {
                format!(
                    "`{s}` is not {}",
                    formats::describe(formats::KUBERNETES_VERSION)
                )
            })
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for KubernetesVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubernetesVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for KubernetesVersion {
    fn schema_name() -> Cow<'static, str> {
        "KubernetesVersion".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = patterns::string(formats::KUBERNETES_VERSION);
        schema.insert("examples".into(), json!(["1.28.2", "1.31.0"]));
        schema
    }
}

/// A secret string: shown as `***` by `Debug`, never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret value itself; only for writing it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
