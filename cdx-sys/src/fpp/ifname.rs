//! Interface names as cdx stores them: 16 bytes (`IFNAMSIZ`), NUL-terminated.

use std::fmt;

/// Size of an interface-name field, terminating NUL included.
pub const IFNAMSIZ: usize = 16;

/// Why a name cannot be an interface-name field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IfNameError {
    /// More than 15 bytes: no room for the terminating NUL.
    #[error("{0} bytes is longer than the 15 an interface name may have")]
    TooLong(usize),
    /// A NUL byte inside the name.
    #[error("interface name contains a NUL byte")]
    Nul,
    /// A 16-byte field with no NUL terminator.
    #[error("interface-name field has no NUL terminator")]
    Unterminated,
}

/// A validated interface name (0..=15 bytes, no NUL), stored as its 16-byte field.
///
/// The empty name is valid and means "none" (e.g. an unset input device).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IfName {
    field: [u8; IFNAMSIZ],
}

impl IfName {
    /// The empty name.
    pub const EMPTY: IfName = IfName { field: [0; IFNAMSIZ] };

    /// Validates `name`.
    ///
    /// # Errors
    /// [`IfNameError::TooLong`] above 15 bytes, [`IfNameError::Nul`] for an embedded NUL.
    pub fn new(name: &str) -> Result<IfName, IfNameError> {
        IfName::from_bytes(name.as_bytes())
    }

    /// Validates raw name bytes (interface names are bytes to the kernel).
    ///
    /// # Errors
    /// As [`IfName::new`].
    pub fn from_bytes(name: &[u8]) -> Result<IfName, IfNameError> {
        if name.contains(&0) {
            return Err(IfNameError::Nul);
        }
        let mut field = [0; IFNAMSIZ];
        field
            .get_mut(..name.len())
            .filter(|_| name.len() < IFNAMSIZ)
            .ok_or(IfNameError::TooLong(name.len()))?
            .copy_from_slice(name);
        Ok(IfName { field })
    }

    /// Reads a wire field: the name ends at the first NUL; bytes after it are ignored.
    ///
    /// # Errors
    /// [`IfNameError::Unterminated`] if the 16 bytes hold no NUL.
    pub fn from_field(field: &[u8; IFNAMSIZ]) -> Result<IfName, IfNameError> {
        let len = field.iter().position(|&b| b == 0).ok_or(IfNameError::Unterminated)?;
        IfName::from_bytes(field.get(..len).unwrap_or_default())
    }

    /// The 16-byte wire field (name, then NUL padding).
    pub const fn field(&self) -> [u8; IFNAMSIZ] {
        self.field
    }

    /// The name's bytes, without the terminator.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.field.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        self.field.get(..len).unwrap_or_default()
    }

    /// The name as text, if it is UTF-8 (kernel names almost always are).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// `true` for the empty name.
    pub fn is_empty(&self) -> bool {
        self.field[0] == 0
    }
}

impl TryFrom<&str> for IfName {
    type Error = IfNameError;
    fn try_from(name: &str) -> Result<IfName, IfNameError> {
        IfName::new(name)
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IfName({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_bytes_fit_sixteen_do_not() {
        let name = IfName::new("abcdefghijklmno").unwrap();
        assert_eq!(name.as_str(), Some("abcdefghijklmno"));
        assert_eq!(name.field()[15], 0);
        assert_eq!(IfName::new("abcdefghijklmnop"), Err(IfNameError::TooLong(16)));
        assert_eq!(IfName::new("eth\0x"), Err(IfNameError::Nul));
    }

    #[test]
    fn field_is_name_then_nul_padding() {
        let name = IfName::new("eth0").unwrap();
        assert_eq!(name.field(), *b"eth0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert!(!name.is_empty());
        assert!(IfName::EMPTY.is_empty());
        assert_eq!(IfName::EMPTY.as_bytes(), b"");
    }

    #[test]
    fn wire_field_stops_at_first_nul_and_requires_one() {
        let name = IfName::from_field(b"fm1-mac3\0garbage").unwrap();
        assert_eq!(name.as_bytes(), b"fm1-mac3");
        assert_eq!(name.field(), *b"fm1-mac3\0\0\0\0\0\0\0\0");
        assert_eq!(IfName::from_field(b"0123456789abcdef"), Err(IfNameError::Unterminated));
    }
}
