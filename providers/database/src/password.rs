//! Passwords: how they are sent, and how a changed Secret is noticed without storing anything
//! that reveals them.
//!
//! - PostgreSQL: the role's password is sent as a SCRAM-SHA-256 verifier computed here
//!   ([`scram_verifier`]), never as the clear text, so it cannot show up in the server's
//!   statement log, `pg_stat_activity` or an error message.
//! - Rotation: a role's row keeps, as the non-sensitive output `passwordVersion`, an HMAC-SHA-256
//!   of the password keyed by the admin connection's password ([`version`]). Each observe
//!   recomputes it from the Secret and compares it with the row's: a different value means the
//!   Secret changed and the password is set again. Someone who can read the CR's status but not
//!   the admin password cannot test guesses against it (the key is unknown), and someone who has
//!   the admin password needs no guesses. Nothing else about the password is kept anywhere. A
//!   row that lost its outputs (an Error row, a status wiped by hand) makes the password be set
//!   once more, which is harmless.

use orkestra_provider::SecretValue;
use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA-256 (RFC 2104), written out to keep the crate on the workspace's `sha2` alone.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `passwordVersion` of `password` for user `name`, keyed by `key` (the admin connection's
/// password): 32 hex characters.
pub fn version(key: &SecretValue, name: &str, password: &SecretValue) -> String {
    let mut message = b"orkestra-password-v1\0".to_vec();
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(password.expose());
    hmac_sha256(key.expose(), &message)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A SCRAM-SHA-256 verifier of `password` with a fresh random salt, the form PostgreSQL stores
/// (`SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`) and accepts in `PASSWORD '...'`.
pub fn scram_verifier(password: &SecretValue) -> String {
    postgres_protocol::password::scram_sha_256(password.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn versions_change_with_password_key_and_name() {
        let k = SecretValue::new("admin");
        let p = SecretValue::new("hunter2");
        let v = version(&k, "app", &p);
        assert_eq!(v.len(), 32);
        assert_eq!(v, version(&k, "app", &p));
        assert_ne!(v, version(&k, "app", &SecretValue::new("hunter3")));
        assert_ne!(v, version(&SecretValue::new("other"), "app", &p));
        assert_ne!(v, version(&k, "app2", &p));
        assert!(!v.contains("hunter2"));
    }

    #[test]
    fn verifiers_are_salted_scram() {
        let p = SecretValue::new("hunter2");
        let a = scram_verifier(&p);
        assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
        assert_ne!(a, scram_verifier(&p), "a fresh salt each time");
        assert!(!a.contains("hunter2"));
    }
}
