//! Model names and versions: validated path components.
//!
//! Both become directory names under the registry root, so a value that could leave the root (`..`, `/`,
//! `\`), hide itself (a leading `.`), read as a flag (a leading `-`) or collide with the registry's own files
//! (`active.json`, `history.jsonl`) is refused when parsed. Holding a [`ModelName`] or a [`Version`] means the
//! value is safe to join to a path; nothing else in the crate re-checks it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Long enough for any real name, short enough to stay far below every filesystem's limit.
const MAX_LEN: usize = 128;

/// File names a model directory holds beside its versions: a version may not take them.
pub(crate) const RESERVED: &[&str] = &["active.json", "history.jsonl"];

/// A model name or version that is not a safe path component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidName {
    /// `model name` or `version`.
    pub what: &'static str,
    /// The value refused.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

fn check(what: &'static str, value: &str, reserved: &[&str]) -> Result<(), InvalidName> {
    let refuse = |reason| {
        Err(InvalidName {
            what,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return refuse("empty");
    }
    if value.len() > MAX_LEN {
        return refuse("longer than 128 bytes");
    }
    if value.starts_with('.') {
        return refuse("starts with `.` (`.`, `..` and hidden names are refused)");
    }
    if value.starts_with('-') {
        return refuse("starts with `-`");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return refuse(
            "only ASCII letters, digits, `.`, `_` and `-` are allowed (no `/`, `\\`, spaces)",
        );
    }
    if reserved.contains(&value) {
        return refuse("reserved for the registry's own files");
    }
    Ok(())
}

/// Defines a validated path-component newtype.
macro_rules! component {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $reserved:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Validates `value`.
            ///
            /// # Errors
            /// [`InvalidName`] when it is not a safe path component (see the module doc).
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                check($what, &value, $reserved)?;
                Ok(Self(value))
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl FromStr for $ty {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, InvalidName> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $ty {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

component!(
    /// A model's name: the directory `<root>/<name>/`.
    ModelName,
    "model name",
    &[]
);

component!(
    /// A model version: the directory `<root>/<name>/<version>/`. Any safe name (`3`, `2026-11-25`,
    /// `1.4.0-rc1`); listings order versions naturally (`2` before `10`), see [`Version::natural_cmp`].
    Version,
    "version",
    RESERVED
);

impl Version {
    /// Natural order: runs of digits compare as numbers (`2` < `10`, `1.9` < `1.10`), everything else
    /// bytewise; ties (`01` and `1`) break bytewise so the order is total.
    pub fn natural_cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
                let (si, sj) = (i, j);
                while i < a.len() && a[i].is_ascii_digit() {
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                // Compare digit runs by value without parsing (no overflow): strip leading zeros, then the
                // longer run is larger, then bytewise.
                let x = trim_zeros(&a[si..i]);
                let y = trim_zeros(&b[sj..j]);
                let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if ord != Ordering::Equal {
                    return ord;
                }
            } else {
                if a[i] != b[j] {
                    return a[i].cmp(&b[j]);
                }
                i += 1;
                j += 1;
            }
        }
        (a.len() - i)
            .cmp(&(b.len() - j))
            .then_with(|| self.0.cmp(&other.0))
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests;
