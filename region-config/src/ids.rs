//! Names of nodes and regions.
//!
//! Both are newtypes over `String` so that a node id can never be passed where a region name is
//! expected (they are both short strings and easy to swap by accident). Both appear in NATS
//! subjects, URLs and log fields, so a validated config only holds names made of ASCII letters,
//! digits, `-` and `_`; see [`is_valid_name`].

use std::borrow::Borrow;
use std::fmt;

/// Identifier of one server node, unique across the whole cluster (e.g. `eu-1`).
///
/// ```
/// use ludus_regions::NodeId;
///
/// let node_id = NodeId::new("eu-1");
/// assert_eq!(node_id.as_str(), "eu-1");
/// assert_eq!(node_id.to_string(), "eu-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

/// Name of a region (e.g. `eu`), the key of a `[regions.<name>]` table.
///
/// ```
/// use ludus_regions::RegionName;
///
/// let region = RegionName::new("eu");
/// assert_eq!(region.as_str(), "eu");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionName(String);

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// Wraps a string without checking it; a [`RegionConfig`](crate::RegionConfig) only
            /// ever holds names that passed [`is_valid_name`].
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }

            /// The name as written in the region file.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        /// Lets maps keyed by this type be queried with a plain `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::new(name)
            }
        }
    };
}

string_newtype!(NodeId);
string_newtype!(RegionName);

/// Whether `name` is usable as a node id or region name: 1 to 64 ASCII letters, digits, `-` or
/// `_`. The bound keeps names safe inside NATS subjects (where `.`, `*`, `>` and spaces are
/// special) and URLs.
///
/// ```
/// use ludus_regions::is_valid_name;
///
/// assert!(is_valid_name("eu-west_2"));
/// assert!(!is_valid_name("eu.west"));
/// assert!(!is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
