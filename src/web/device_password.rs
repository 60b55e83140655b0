//! The device password of the LAN settings pages, kept only as an argon2id PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a random salt from the OS.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::secrets::Secret;

pub fn hash(password: &Secret) -> Result<Secret, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| Secret::new(h.to_string()))
        .map_err(|e| format!("cannot hash the device password: {e}"))
}

/// False for a wrong password and for a stored hash that does not parse.
pub fn verify(password: &Secret, hash: &Secret) -> bool {
    PasswordHash::new(hash.expose())
        .is_ok_and(|parsed| Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let password = Secret::new("box password");
        let first = hash(&password).unwrap();
        let second = hash(&password).unwrap();
        assert!(first.expose().starts_with("$argon2id$v=19$"), "{}", first.expose());
        assert_ne!(first, second, "a fresh salt each time");
        assert!(!first.expose().contains("box password"));
        assert!(verify(&password, &first) && verify(&password, &second));
        assert!(!verify(&Secret::new("box passwort"), &first));
        assert!(!verify(&password, &Secret::new("not a hash")));
        assert!(!verify(&password, &Secret::default()));
    }
}
