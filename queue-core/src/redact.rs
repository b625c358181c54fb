//! Removing passwords from URLs in text that is stored or logged.
//!
//! Error messages quote URLs (a connection string in a handler's error, a Redis URL in a
//! setup error). Anything such text reaches, a status record, the retry and dead sets, a
//! log drain, is readable by more people than the app's configuration is, so the password
//! part of `scheme://user:password@host` is replaced by `***` first.

use std::borrow::Cow;

/// What replaces the password.
const MASK: &str = "***";

/// `text` with the password of every `scheme://user:password@host` URL replaced by `***`
/// (`scheme://secret@host`, a bare token, becomes `scheme://***@host`).
///
/// ```
/// use queue_core::redact::redact_credentials;
/// assert_eq!(
///     redact_credentials("cannot reach redis://user:pass@h:6379/0"),
///     "cannot reach redis://user:***@h:6379/0"
/// );
/// assert_eq!(redact_credentials("rediss://:pw@h:6380"), "rediss://:***@h:6380");
/// assert_eq!(redact_credentials("https://tok@example.com/x"), "https://***@example.com/x");
/// assert_eq!(redact_credentials("no url here, user@example.com"), "no url here, user@example.com");
/// ```
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    // Bytes of `text` already copied to `out` (nothing is copied until a password is found).
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let authority_start = search + found + "://".len();
        // The authority ends at the path, query or fragment, or where the URL stops being
        // a URL in prose (whitespace, quotes, brackets).
        let authority_len = text[authority_start..]
            .find(|c: char| c.is_whitespace() || "/?#\"'<>()[]{}`,".contains(c))
            .unwrap_or(text.len() - authority_start);
        let authority = &text[authority_start..authority_start + authority_len];
        search = authority_start + authority_len;
        // The last `@` ends the user information: a password may itself hold an `@`.
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let userinfo = &authority[..at];
        let secret_start = match userinfo.find(':') {
            Some(colon) => authority_start + colon + 1,
            None => authority_start,
        };
        let secret_end = authority_start + at;
        if text[secret_start..secret_end] == *MASK {
            continue;
        }
        out.push_str(&text[copied..secret_start]);
        out.push_str(MASK);
        copied = secret_end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_in_the_text_loses_its_password() {
        let cases = [
            ("redis://user:pass@host", "redis://user:***@host"),
            (
                "a redis://u:p@h:1/0 and postgres://x:y@db/app?sslmode=require",
                "a redis://u:***@h:1/0 and postgres://x:***@db/app?sslmode=require",
            ),
            ("redis://u:p@ss@host:6379", "redis://u:***@host:6379"),
            ("\"redis://u:p@h\"", "\"redis://u:***@h\""),
            ("redis://u:@h", "redis://u:***@h"),
            ("redis://u:***@h", "redis://u:***@h"),
            ("redis://h:6379", "redis://h:6379"),
            ("http://h/path@x", "http://h/path@x"),
            ("ünïcode redis://ü:ß@h ✓", "ünïcode redis://ü:***@h ✓"),
            ("://", "://"),
            ("x://@", "x://***@"),
            ("", ""),
        ];
        for (given, expected) in cases {
            assert_eq!(redact_credentials(given), expected, "{given}");
        }
    }

    #[test]
    fn text_without_a_password_is_not_copied() {
        assert!(matches!(
            redact_credentials("redis://h:6379 user@example.com"),
            Cow::Borrowed(_)
        ));
    }
}
