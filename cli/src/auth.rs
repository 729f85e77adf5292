//! CLI credentials: argon2id password hashes (PHC strings), the password file, verification.
//!
//! Contract:
//! - [`Credentials`] is built once from the configured users and/or a password file (a
//!   Kubernetes Secret mounted as a file) and shared read-only with the daemon's auth worker.
//! - [`Credentials::verify`] costs one argon2 computation (≈ 25 ms, 19 MiB with the default
//!   parameters): call it off the event loop. Unknown users are verified against a dummy hash
//!   with the default parameters, so the answer takes the same time whether the user exists.
//!   A long-lived verifier passes the same [`VerifyMemory`] to
//!   [`Credentials::verify_with`] every time, so the 19 MiB are allocated once.
//! - Only `$argon2id$` PHC strings are accepted, with bounded cost parameters (a hostile
//!   configuration cannot make one login allocate gigabytes).
//! - [`Secret`] carries passwords through the session; its `Debug` never shows the value, and
//!   the bytes are overwritten when it is dropped (best effort).
//! - No I/O here: the daemon reads the password file and passes its text.

use std::fmt;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;

/// Largest accepted argon2 memory cost (KiB): 256 MiB.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
/// Largest accepted argon2 time cost (passes).
pub const MAX_TIME_COST: u32 = 16;
/// Largest accepted argon2 parallelism (lanes).
pub const MAX_PARALLELISM: u32 = 8;
/// Longest accepted user name in bytes.
pub const MAX_USER_NAME: usize = 64;

/// The vendor's default user name, accepted with password `admin` when nothing is configured.
pub const DEFAULT_ADMIN_USER: &str = "admin";

/// argon2id (default parameters) of the password `admin`.
const DEFAULT_ADMIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$sycMTviH0SAiIAtg6TSFfA$SrqlzXI85Vp414oDz+MTGPsdmL3pqbv54H0iXPYz5cU";

/// argon2id (default parameters) of a password nobody types: unknown users are checked against it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$oHyQWLXIYefkazq72TXZGA$yEzeQP8PYseUCq81qo5xhjlVkjqC9Ts0k1MaCF/jkuw";

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// A password hash is not an acceptable argon2id PHC string.
    #[error("invalid password hash: {0}")]
    InvalidHash(String),
    /// A user name is empty, too long, or contains blanks, `:` or control characters.
    #[error("invalid user name {0:?}: 1 to 64 bytes without blanks, ':' or control characters")]
    InvalidUserName(String),
    /// The same user is defined twice.
    #[error("user {0:?} is defined more than once")]
    DuplicateUser(String),
    /// A password file line is wrong.
    #[error("{origin}:{line}: {reason}")]
    PasswordFile {
        /// Where the text came from (a path).
        origin: String,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Hashing failed (no randomness for the salt).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A password in transit. `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// A validated argon2id PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct PhcHash(String);

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salt and digest are not secret, but there is no reason to spread them in logs.
        let params = self.0.split('$').nth(3).unwrap_or_default();
        write!(f, "PhcHash(argon2id {params})")
    }
}

impl PhcHash {
    /// Validate a PHC string: `$argon2id$v=19$m=…,t=…,p=…$salt$hash` within the cost bounds.
    pub fn parse(phc: &str) -> Result<Self, AuthError> {
        let phc = phc.trim();
        let parsed =
            PasswordHash::new(phc).map_err(|error| AuthError::InvalidHash(error.to_string()))?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(AuthError::InvalidHash(format!(
                "algorithm {} is not argon2id",
                parsed.algorithm.as_str()
            )));
        }
        if parsed.hash.is_none() {
            return Err(AuthError::InvalidHash("no hash value".to_owned()));
        }
        let params =
            Params::try_from(&parsed).map_err(|error| AuthError::InvalidHash(error.to_string()))?;
        if params.m_cost() > MAX_MEMORY_KIB
            || params.t_cost() > MAX_TIME_COST
            || params.p_cost() > MAX_PARALLELISM
        {
            return Err(AuthError::InvalidHash(format!(
                "cost m={},t={},p={} above the limits m={MAX_MEMORY_KIB},t={MAX_TIME_COST},p={MAX_PARALLELISM}",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            )));
        }
        Ok(Self(phc.to_owned()))
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `password` matches (CPU- and memory-heavy: off the event loop).
    pub fn verify(&self, password: &str) -> bool {
        self.verify_with(password, &mut VerifyMemory::default())
    }

    /// [`verify`](Self::verify) in `memory`, which keeps its allocation for the next call.
    pub fn verify_with(&self, password: &str, memory: &mut VerifyMemory) -> bool {
        let Ok(parsed) = PasswordHash::new(&self.0) else { return false };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
        let Ok(params) = Params::try_from(&parsed) else { return false };
        let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else {
            return false;
        };
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let Some(out) = buffer.get_mut(..expected.len()) else { return false };
        if memory.blocks.len() < params.block_count() {
            memory.blocks.resize(params.block_count(), Block::default());
        }
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
        let computed = argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            out,
            &mut memory.blocks,
        );
        // What argon2 derived from this password does not stay in memory until the next login.
        memory.blocks.fill(Block::default());
        // `Output` compares in constant time.
        computed.is_ok() && Output::new(out).is_ok_and(|out| out == *expected)
    }
}

/// Working memory of argon2 verifications, reused from one to the next.
///
/// argon2 fills `m_cost` KiB of 64-byte aligned blocks (19 MiB with the default parameters).
/// Allocated afresh for each login, glibc left one more such region resident per login until
/// about nine were held (measured in cmmd: 14 MB → 170 MB resident after eight logins); one
/// buffer reused by the verifying thread keeps it at one.
#[derive(Default)]
pub struct VerifyMemory {
    blocks: Vec<Block>,
}

impl fmt::Debug for VerifyMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyMemory({} KiB)", self.blocks.len())
    }
}

/// Hash a password to an argon2id PHC string with the default parameters (m=19456 KiB, t=2,
/// p=1) and a random salt: the `cmmd hash-password` subcommand.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    hash_password_with(password, Params::default())
}

/// Hash with explicit parameters (tests use cheap ones).
pub(crate) fn hash_password_with(password: &str, params: Params) -> Result<String, AuthError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Hashing(error.to_string()))
}

/// The users who may log in.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: Vec<(String, PhcHash)>,
    default_admin: bool,
}

impl Credentials {
    /// No users (nobody can log in).
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `admin` / `admin`, as the vendor (log a warning when the daemon falls back to it).
    pub fn default_admin() -> Self {
        Self {
            users: vec![(DEFAULT_ADMIN_USER.to_owned(), PhcHash(DEFAULT_ADMIN_HASH.to_owned()))],
            default_admin: true,
        }
    }

    /// True if these are the built-in `admin` / `admin` credentials.
    pub fn is_default_admin(&self) -> bool {
        self.default_admin
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True if nobody can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user names.
    pub fn user_names(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(name, _)| name.as_str())
    }

    /// Add a user with an argon2id PHC string.
    pub fn add_user(&mut self, name: &str, phc: &str) -> Result<(), AuthError> {
        let name = name.trim();
        let valid = !name.is_empty()
            && name.len() <= MAX_USER_NAME
            && !name.chars().any(|ch| ch.is_whitespace() || ch.is_control() || ch == ':');
        if !valid {
            return Err(AuthError::InvalidUserName(name.to_owned()));
        }
        if self.users.iter().any(|(known, _)| known == name) {
            return Err(AuthError::DuplicateUser(name.to_owned()));
        }
        let hash = PhcHash::parse(phc)?;
        self.users.push((name.to_owned(), hash));
        self.default_admin = false;
        Ok(())
    }

    /// Add the users of a password file: one `user:$argon2id$…` per line; blank lines and lines
    /// starting with `#` are skipped. `origin` names the file in errors (`path:line: …`).
    /// Returns how many users were added; on error none of the file's users are added.
    pub fn add_password_file(&mut self, origin: &str, text: &str) -> Result<usize, AuthError> {
        let mut staged = self.clone();
        let mut added = 0;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |reason: String| AuthError::PasswordFile {
                origin: origin.to_owned(),
                line: index + 1,
                reason,
            };
            let Some((name, phc)) = line.split_once(':') else {
                return Err(at("expected user:$argon2id$... (no ':' found)".to_owned()));
            };
            staged.add_user(name, phc).map_err(|error| at(error.to_string()))?;
            added += 1;
        }
        *self = staged;
        Ok(added)
    }

    /// True if `user` exists and `password` matches. CPU- and memory-heavy: call it off the
    /// event loop. Takes the same time for unknown users.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.verify_with(user, password, &mut VerifyMemory::default())
    }

    /// [`verify`](Self::verify) in `memory`, which keeps its allocation for the next call.
    pub fn verify_with(&self, user: &str, password: &str, memory: &mut VerifyMemory) -> bool {
        match self.users.iter().find(|(name, _)| name == user) {
            Some((_, hash)) => hash.verify_with(password, memory),
            None => {
                let _ = PhcHash(DUMMY_HASH.to_owned()).verify_with(password, memory);
                false
            }
        }
    }
}
