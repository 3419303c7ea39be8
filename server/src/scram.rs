//! SCRAM-SHA-256 verifiers, as PostgreSQL stores passwords:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts, RFC 5803).
//!
//! A verifier lets the server check a client's proof and prove itself in return, but not
//! log in as the role: the password is never kept. The key derivation is pgwire's (the
//! same code checks the proofs), with a fresh random salt per password.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramSecret};
use ring::rand::{SecureRandom, SystemRandom};

/// PostgreSQL's default `scram_iterations`.
pub const ITERATIONS: usize = 4096;
const SALT_BYTES: usize = 16;
const PREFIX: &str = "SCRAM-SHA-256$";

/// The verifier of `password`, with a fresh salt.
pub fn verifier(password: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    // The system's random source failing is not something to carry on from.
    SystemRandom::new()
        .fill(&mut salt)
        .expect("the system's random number generator failed");
    verifier_with_salt(password, &salt, ITERATIONS)
}

fn verifier_with_salt(password: &str, salt: &[u8], iterations: usize) -> String {
    let salted = gen_salted_password(password, salt, iterations);
    match ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, iterations) {
        ScramSecret::Verifier {
            salt,
            iterations,
            stored_key,
            server_key,
        } => format!(
            "{PREFIX}{iterations}:{}${}:{}",
            STANDARD.encode(salt),
            STANDARD.encode(stored_key),
            STANDARD.encode(server_key)
        ),
        ScramSecret::SaltedPassword { .. } => unreachable!("a verifier is made from it"),
    }
}

/// The parts of a stored verifier, ready to check a client's proof; `None` for text that
/// is not a well-formed SCRAM-SHA-256 verifier.
pub fn parse(verifier: &str) -> Option<ScramSecret> {
    let rest = verifier.strip_prefix(PREFIX)?;
    let (head, keys) = rest.split_once('$')?;
    let (iterations, salt) = head.split_once(':')?;
    let (stored_key, server_key) = keys.split_once(':')?;
    let iterations: usize = iterations.parse().ok().filter(|&i| i > 0)?;
    let salt = STANDARD.decode(salt).ok().filter(|s| !s.is_empty())?;
    let stored_key = STANDARD.decode(stored_key).ok().filter(|k| k.len() == 32)?;
    let server_key = STANDARD.decode(server_key).ok().filter(|k| k.len() == 32)?;
    Some(ScramSecret::Verifier {
        salt,
        iterations,
        stored_key,
        server_key,
    })
}

/// Whether a `PASSWORD '…'` is already a verifier (as pg_dump writes roles), to be stored
/// as it is rather than hashed again.
pub fn is_verifier(text: &str) -> bool {
    parse(text).is_some()
}

/// Whether `password` is the one `verifier` was made from.
pub fn verify(verifier: &str, password: &str) -> bool {
    let Some(ScramSecret::Verifier {
        salt,
        iterations,
        stored_key,
        server_key,
    }) = parse(verifier)
    else {
        return false;
    };
    let again = verifier_with_salt(password, &salt, iterations);
    matches!(parse(&again), Some(ScramSecret::Verifier { stored_key: s, server_key: k, .. })
        if s == stored_key && k == server_key)
}

/// A verifier no password matches, for a role that does not exist or has no password:
/// the exchange runs to its end, so a client cannot tell those apart from a wrong password.
/// Its salt depends on the name, as a real one would stay the same between attempts.
pub fn doomed(name: &str) -> ScramSecret {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let salt = digest.as_ref()[..SALT_BYTES].to_vec();
    let mut keys = [0u8; 64];
    let _ = SystemRandom::new().fill(&mut keys);
    ScramSecret::Verifier {
        salt,
        iterations: ITERATIONS,
        stored_key: keys[..32].to_vec(),
        server_key: keys[32..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_check_their_password_only() {
        let v = verifier("s3cret");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(is_verifier(&v));
        assert!(verify(&v, "s3cret"));
        assert!(!verify(&v, "s3cret "));
        assert_ne!(v, verifier("s3cret"), "a fresh salt each time");
        assert!(!v.contains("s3cret"));
    }

    #[test]
    fn postgresqls_verifiers_are_read_as_they_are() {
        // What PostgreSQL 15 stored for `CREATE ROLE r PASSWORD 'postgres'`.
        let pg = "SCRAM-SHA-256$4096:D5Gnd7PCRQRwG3eAzPahSQ==$\
                  kawjEVVR7EfHfKPBvdyZnfrBzylO+EPgHQfXkX9lKNo=:\
                  m0ZIYJegTXoD+LztoH5x3cWAWdpeoL39/t+Rw8GfBUk=";
        assert!(is_verifier(pg));
        assert!(verify(pg, "postgres"));
        assert!(!verify(pg, "Postgres"));
        let salt = STANDARD.decode("D5Gnd7PCRQRwG3eAzPahSQ==").unwrap();
        assert_eq!(verifier_with_salt("postgres", &salt, 4096), pg);
    }

    #[test]
    fn malformed_verifiers_are_not_verifiers() {
        for text in [
            "",
            "secret",
            "SCRAM-SHA-256$",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$0:c2FsdA==$",
            "md5abcdef",
        ] {
            assert!(!is_verifier(text), "{text}");
        }
    }
}
