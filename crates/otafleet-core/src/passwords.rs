//! Passwords of local accounts (docs/access.md): argon2id with the `argon2` crate's defaults
//! (19 MiB, 2 passes), a random salt each, kept as the PHC string; checked in constant time by
//! the crate. Hashing is slow on purpose, so it runs on the blocking pool. How many wrong
//! guesses an address may get is [`Throttle`]'s business.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{CoreError, Result};

/// Shortest and longest password accepted.
pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 256;
/// Wrong passwords an address may give in [`WINDOW`] before it must wait for the window to pass.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// A new password must be 12 to 256 characters.
pub fn check_new(password: &str) -> Result<()> {
    let n = password.chars().count();
    if (MIN_CHARS..=MAX_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "weak_password",
            format!("a password must have {MIN_CHARS} to {MAX_CHARS} characters (this one has {n}); a few unrelated words make a good one"),
        ))
    }
}

/// The argon2id PHC string of a password.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Io(std::io::Error::other(format!("argon2: {e}"))))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Whether `password` is the one `stored` hashes. With no stored hash (an unknown address, or a
/// member without a password) a hash is still computed, so that the answer takes as long and
/// says nothing about which addresses exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY.with(|d| d.clone()));
        match PasswordHash::new(&stored) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    })
    .await
    .unwrap_or(false)
}

thread_local! {
    /// A hash of nothing anyone knows, verified against when there is no real one.
    static DUMMY: String = Argon2::default()
        .hash_password(b"no account has this password", &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .unwrap_or_default();
}

/// Wrong passwords per address, in memory (per instance): after [`MAX_FAILURES`] in [`WINDOW`]
/// the address is refused without a check until the window has passed.
#[derive(Default)]
pub struct Throttle(std::sync::Mutex<HashMap<String, (u32, Instant)>>);

impl Throttle {
    /// Refuse (409 `too_many_attempts`) while the address is locked out.
    pub fn check(&self, email: &str) -> Result<()> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, since)) = m.get(email).copied() {
            if since.elapsed() >= WINDOW {
                m.remove(email);
            } else if n >= MAX_FAILURES {
                let wait = (WINDOW - since.elapsed()).as_secs() / 60 + 1;
                return Err(CoreError::Unavailable {
                    code: "too_many_attempts",
                    message: format!(
                        "too many wrong passwords for this address: try again in {wait} minutes, or ask an admin to set a new password"
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn failed(&self, email: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let e = m.entry(email.to_owned()).or_insert((0, Instant::now()));
        e.0 += 1;
    }

    pub fn succeeded(&self, email: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("correct horse batter".into(), Some(h)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn short_and_overlong_passwords_are_refused() {
        assert!(check_new("twelve chars").is_ok());
        assert_eq!(check_new("short").unwrap_err().code(), "weak_password");
        assert!(check_new(&"x".repeat(257)).is_err());
    }

    #[test]
    fn an_address_is_locked_out_after_five_wrong_passwords() {
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES {
            assert!(t.check("a@b").is_ok());
            t.failed("a@b");
        }
        assert_eq!(t.check("a@b").unwrap_err().code(), "too_many_attempts");
        assert!(t.check("c@d").is_ok(), "another address is not");
        t.succeeded("a@b");
        assert!(t.check("a@b").is_ok());
    }
}
