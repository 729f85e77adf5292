//! Credentials, PHC validation, the password file and verification.

use argon2::Params;

use crate::auth::{AuthError, Credentials, PhcHash, Secret, hash_password, hash_password_with};

/// A cheap argon2id hash (8 KiB, one pass) so that tests stay fast in debug builds.
fn cheap(password: &str) -> String {
    hash_password_with(password, Params::new(8, 1, 1, None).unwrap()).unwrap()
}

#[test]
fn hashes_verify_only_their_password() {
    let phc = cheap("s3cret");
    assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
    let hash = PhcHash::parse(&phc).unwrap();
    assert!(hash.verify("s3cret"));
    assert!(!hash.verify("s3cret "));
    assert!(!hash.verify(""));
    assert_eq!(hash.as_str(), phc);
    assert_eq!(format!("{hash:?}"), "PhcHash(argon2id m=8,t=1,p=1)");
}

#[test]
fn hash_password_uses_argon2id_with_the_default_cost() {
    let phc = hash_password("pw").unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(PhcHash::parse(&phc).unwrap().verify("pw"));
}

#[test]
fn only_bounded_argon2id_hashes_are_accepted() {
    let argon2i = hash_password_with("x", Params::new(8, 1, 1, None).unwrap()).unwrap().replacen(
        "$argon2id$",
        "$argon2i$",
        1,
    );
    assert_eq!(
        PhcHash::parse(&argon2i),
        Err(AuthError::InvalidHash("algorithm argon2i is not argon2id".to_owned()))
    );
    assert!(matches!(PhcHash::parse("plaintext"), Err(AuthError::InvalidHash(_))));
    assert!(matches!(
        PhcHash::parse("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ"),
        Err(AuthError::InvalidHash(_))
    ));
    let huge = cheap("x").replace("m=8,", "m=4194304,");
    assert_eq!(
        PhcHash::parse(&huge),
        Err(AuthError::InvalidHash(
            "cost m=4194304,t=1,p=1 above the limits m=262144,t=16,p=8".to_owned()
        ))
    );
}

#[test]
fn password_file_lines_comments_and_blanks() {
    let text =
        format!("# CLI users\n\nalice:{}\n  bob:{}  \r\n", cheap("alice-pw"), cheap("bob-pw"));
    let mut credentials = Credentials::new();
    assert_eq!(credentials.add_password_file("/etc/cmm/secret/cli-users", &text), Ok(2));
    assert_eq!(credentials.user_names().collect::<Vec<_>>(), ["alice", "bob"]);
    assert!(credentials.verify("alice", "alice-pw"));
    assert!(credentials.verify("bob", "bob-pw"));
    assert!(!credentials.verify("alice", "bob-pw"));
    assert!(!credentials.is_default_admin());
}

#[test]
fn password_file_errors_name_the_line_and_add_nobody() {
    let good = cheap("pw");
    let mut credentials = Credentials::new();
    let error = credentials
        .add_password_file("users", &format!("a:{good}\n# c\njust-a-name\n"))
        .unwrap_err();
    assert_eq!(error.to_string(), "users:3: expected user:$argon2id$... (no ':' found)");
    assert!(credentials.is_empty());
    let error = credentials.add_password_file("users", "a:$argon2id$broken\n").unwrap_err();
    assert!(error.to_string().starts_with("users:1: invalid password hash: "), "{error}");
    let error =
        credentials.add_password_file("users", &format!("a:{good}\na:{good}\n")).unwrap_err();
    assert_eq!(error.to_string(), "users:2: user \"a\" is defined more than once");
    let error = credentials.add_password_file("users", &format!("two words:{good}\n")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "users:1: invalid user name \"two words\": 1 to 64 bytes without blanks, ':' or control characters"
    );
    assert!(credentials.is_empty());
}

#[test]
fn users_from_configuration() {
    let mut credentials = Credentials::new();
    credentials.add_user("ops", &cheap("pw")).unwrap();
    assert_eq!(
        credentials.add_user("ops", &cheap("pw")),
        Err(AuthError::DuplicateUser("ops".to_owned()))
    );
    assert_eq!(
        credentials.add_user("", &cheap("pw")),
        Err(AuthError::InvalidUserName(String::new()))
    );
    assert_eq!(credentials.len(), 1);
    assert!(credentials.verify("ops", "pw"));
    assert!(!credentials.is_default_admin());
}

#[test]
fn default_admin_accepts_admin_admin_only_and_unknown_users_fail() {
    let credentials = Credentials::default_admin();
    assert!(credentials.is_default_admin());
    assert_eq!(credentials.user_names().collect::<Vec<_>>(), ["admin"]);
    assert!(credentials.verify("admin", "admin"));
    assert!(!credentials.verify("admin", "Admin"));
    assert!(!credentials.verify("root", "admin"));
}

#[test]
fn secrets_do_not_print() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn one_verify_memory_serves_every_verification() {
    use crate::auth::VerifyMemory;
    let mut memory = VerifyMemory::default();
    let small = PhcHash::parse(&cheap("one")).unwrap();
    let large = PhcHash::parse(
        &hash_password_with("two", Params::new(64, 2, 2, Some(16)).unwrap()).unwrap(),
    )
    .unwrap();
    // The same answers as with fresh memory, whichever hash came before (the memory grows to
    // the largest and is reused for the smaller).
    for _ in 0..2 {
        assert!(large.verify_with("two", &mut memory));
        assert!(!large.verify_with("one", &mut memory));
        assert!(small.verify_with("one", &mut memory));
        assert!(!small.verify_with("two", &mut memory));
    }
    assert_eq!(format!("{memory:?}"), "VerifyMemory(64 KiB)");
    // The reference implementation's example (`argon2 somesalt -id -t 2 -m 16`) verifies.
    let reference =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let reference = PhcHash::parse(reference).unwrap();
    assert!(reference.verify_with("password", &mut memory));
    assert!(!reference.verify_with("passwore", &mut memory));
    let credentials = Credentials::default_admin();
    assert!(credentials.verify_with("admin", "admin", &mut memory));
    assert!(!credentials.verify_with("admin", "admin ", &mut memory));
    assert!(!credentials.verify_with("nobody", "admin", &mut memory), "dummy hash, same memory");
}
