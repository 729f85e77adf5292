//! CLI users: names with argon2id PHC strings, from the TOML file or a password file.
//!
//! Contract: this module only checks the *shape* of credentials (a valid user name, a string that
//! starts like an argon2id PHC string); verifying a password belongs to the `cli` crate. Errors and
//! `Debug` never show a hash. The password file holds one `user:$argon2id$...` per line; blank lines
//! and lines starting with `#` are skipped; errors carry the line number only.

use std::fmt;
use std::path::Path;

use crate::error::ConfigError;

/// A CLI account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub password_hash: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// Longest accepted user name.
const MAX_USER_NAME_LEN: usize = 32;

/// The rule user names follow.
pub(crate) fn check_user_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_USER_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!("expected a user name of 1..={MAX_USER_NAME_LEN} characters [A-Za-z0-9._-]"))
    }
}

/// The rule password hashes follow (shape only).
pub(crate) fn check_password_hash(hash: &str) -> Result<(), String> {
    let fields: Vec<&str> = hash.split('$').collect();
    // "", "argon2id", "v=19", params, salt, hash
    let shaped = fields.len() == 6
        && fields.first() == Some(&"")
        && fields.get(1) == Some(&"argon2id")
        && fields
            .iter()
            .skip(2)
            .all(|field| !field.is_empty() && !field.contains(char::is_whitespace));
    if shaped {
        Ok(())
    } else {
        Err("expected an argon2id PHC string \"$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>\" \
             (make one with `cmmd hash-password`)"
            .into())
    }
}

/// Reads a password file of `user:$argon2id$...` lines (a mounted Kubernetes Secret).
pub fn read_password_file(path: &Path) -> Result<Vec<User>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse_password_file(path, &bytes)
}

pub(crate) fn parse_password_file(path: &Path, bytes: &[u8]) -> Result<Vec<User>, ConfigError> {
    let mut users: Vec<User> = Vec::new();
    for (index, raw_line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let error =
            |message: String| ConfigError::PasswordFile { path: path.to_owned(), line, message };
        let text =
            std::str::from_utf8(raw_line).map_err(|_| error("not valid UTF-8".into()))?.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let Some((name, hash)) = text.split_once(':') else {
            return Err(error("expected \"<user>:<argon2id PHC string>\"".into()));
        };
        check_user_name(name).map_err(|rule| error(format!("user {name:?}: {rule}")))?;
        check_password_hash(hash)
            .map_err(|rule| error(format!("password of user {name:?}: {rule}")))?;
        if users.iter().any(|user| user.name == name) {
            return Err(error(format!("user {name:?} is defined twice")));
        }
        users.push(User { name: name.to_owned(), password_hash: hash.to_owned() });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

    fn parse(text: &str) -> Result<Vec<User>, String> {
        parse_password_file(Path::new("/etc/cmm/secret/cli-users"), text.as_bytes())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn password_file_lines_become_users() {
        let users =
            parse(&format!("# operators\n\nadmin:{HASH}\n  ops-1:{HASH}  \n")).expect("valid");
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "ops-1"]);
        assert_eq!(users.first().map(|u| u.password_hash.as_str()), Some(HASH));
    }

    #[test]
    fn password_file_errors_name_the_line_but_never_the_hash() {
        assert_eq!(
            parse("admin $argon2id$secret").expect_err("no colon"),
            "/etc/cmm/secret/cli-users:1: expected \"<user>:<argon2id PHC string>\""
        );
        let err = parse(&format!("admin:{HASH}\nops:plaintext-password\n")).expect_err("bad hash");
        assert!(err.starts_with(
            "/etc/cmm/secret/cli-users:2: password of user \"ops\": expected an argon2id"
        ));
        assert!(!err.contains("plaintext-password"));
        assert_eq!(
            parse(&format!("a b:{HASH}")).expect_err("bad name"),
            "/etc/cmm/secret/cli-users:1: user \"a b\": expected a user name of 1..=32 characters [A-Za-z0-9._-]"
        );
        assert_eq!(
            parse(&format!("admin:{HASH}\nadmin:{HASH}")).expect_err("dup"),
            "/etc/cmm/secret/cli-users:2: user \"admin\" is defined twice"
        );
        assert_eq!(
            parse_password_file(Path::new("f"), b"# ok\n\xff:x").map_err(|e| e.to_string()),
            Err("f:2: not valid UTF-8".into())
        );
    }

    #[test]
    fn debug_redacts_the_hash() {
        let user = User { name: "admin".into(), password_hash: HASH.into() };
        assert_eq!(format!("{user:?}"), "User { name: \"admin\", password_hash: \"<redacted>\" }");
    }

    #[test]
    fn hash_shape_rejects_other_algorithms() {
        assert!(check_password_hash(HASH).is_ok());
        assert!(check_password_hash("$argon2i$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA").is_err());
        assert!(check_password_hash("$argon2id$v=19$$c2FsdA$aGFzaA").is_err());
        assert!(check_password_hash("admin").is_err());
    }
}
