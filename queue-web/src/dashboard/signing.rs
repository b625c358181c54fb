//! The router's key: HMAC-SHA256 over session cookies and CSRF tokens.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq;

/// What a password-derived key is bound to, so that the same password used elsewhere
/// yields an unrelated key.
const PASSWORD_KEY_CONTEXT: &[u8] = b"dynoqueue dashboard key v1";

/// PBKDF2 rounds of the password-derived key (OWASP's figure for PBKDF2-HMAC-SHA256). The
/// login page hands anyone a CSRF token signed with the key for a nonce of their choosing,
/// so each offline guess at the password must cost what guessing a stored hash costs.
const PASSWORD_KEY_ROUNDS: u32 = 600_000;

/// The last key [`SigningKey::from_password`] derived, by SHA-256 of its password.
static DERIVED: Mutex<Option<([u8; 32], SigningKey)>> = Mutex::new(None);

/// A 32-byte HMAC key. Its `Debug` prints nothing of it.
#[derive(Clone)]
pub(crate) struct SigningKey([u8; 32]);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh key from the operating system's CSPRNG.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self(key))
    }

    /// A key derived from the dashboard password: every web dyno sharing the password
    /// accepts the others' sessions and forms, and changing the password ends every session.
    /// Slow on purpose (a fraction of a second); a process derives the key of one password
    /// once, however many routers it builds with it (test suites build dozens).
    pub(crate) fn from_password(password: &[u8]) -> Self {
        let id: [u8; 32] = Sha256::digest(password).into();
        let mut memo = DERIVED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, key)) = memo.as_ref()
            && bool::from(known.ct_eq(&id))
        {
            return key.clone();
        }
        let key = Self(pbkdf2_sha256(
            password,
            PASSWORD_KEY_CONTEXT,
            PASSWORD_KEY_ROUNDS,
        ));
        *memo = Some((id, key.clone()));
        key
    }

    /// HMAC of the parts (each length-prefixed, so `("ab","c")` and `("a","bc")` differ),
    /// as lowercase hex.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> String {
        hex(&mac(&self.0, parts))
    }

    /// Whether `tag` is [`SigningKey::sign`] of the parts, compared in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &str) -> bool {
        let expected = self.sign(parts);
        expected.as_bytes().ct_eq(tag.as_bytes()).into()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 (RFC 8018, the `pbkdf2` crate) with a 32-byte output.
fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
    out
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Bytes of lowercase or uppercase hex text; `None` for anything else.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_and_parts_are_delimited() {
        let k = SigningKey::from_password(b"pw");
        let tag = k.sign(&[b"ab", b"c"]);
        assert!(k.verify(&[b"ab", b"c"], &tag));
        assert!(!k.verify(&[b"a", b"bc"], &tag));
        assert!(!SigningKey::from_password(b"pw2").verify(&[b"ab", b"c"], &tag));
        assert_eq!(tag.len(), 64);
    }

    #[test]
    fn pbkdf2_matches_the_published_vectors() {
        // PBKDF2-HMAC-SHA256, P = "password", S = "salt", dkLen = 32.
        for (rounds, expected) in [
            (
                1,
                "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b",
            ),
            (
                2,
                "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43",
            ),
            (
                4096,
                "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a",
            ),
        ] {
            assert_eq!(hex(&pbkdf2_sha256(b"password", b"salt", rounds)), expected);
        }
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abFF").unwrap(), vec![0, 0xab, 0xff]);
        assert!(unhex("0g").is_none());
        assert!(unhex("abc").is_none());
    }
}
