//! API tokens: `scope:token` entries parsed from `API_TOKENS` (comma-separated) and
//! `API_TOKENS_FILE` (one a line), and the check of a presented token.
//!
//! Only SHA-256 digests are kept in memory: a token given in clear is hashed at start-up, and
//! `scope:sha256:<64 hex>` gives the digest directly, so the secret itself need not be stored.
//! A presented token is hashed and compared with every digest in constant time (`subtle`), so
//! neither the comparison nor which entry matched shows in the answer's timing. Error messages
//! name entries by position, never by content.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. `admin` may do everything; `read` and `write` only their own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

/// Shortest token accepted in clear: shorter ones are guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A SHA-256 digest.
pub type TokenDigest = [u8; 32];

/// The SHA-256 digest of a token.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone)]
struct Entry {
    scope: Scope,
    digest: TokenDigest,
}

/// Which configured token a request presented: its position in the configuration (the rate
/// limiter's key) and its scope. Never the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub id: usize,
    pub scope: Scope,
}

/// Every configured token, as digests.
#[derive(Clone, Default)]
pub struct TokenSet {
    entries: Vec<Entry>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} token(s), redacted)", self.entries.len())
    }
}

impl TokenSet {
    /// Reads `API_TOKENS` (comma-separated) and `API_TOKENS_FILE` (one entry a line, `#`
    /// comments); both may be given. The error is one line that names the entry, not its text.
    pub fn load(list: Option<&str>, file: Option<&Path>) -> Result<Self, String> {
        let mut set = Self::default();
        if let Some(list) = list {
            for (n, entry) in list.split(',').enumerate() {
                let entry = entry.trim();
                if !entry.is_empty() {
                    set.add(entry, || format!("API_TOKENS entry {}", n + 1))?;
                }
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|error| {
                format!("API_TOKENS_FILE {} cannot be read: {error}", path.display())
            })?;
            for (n, line) in text.lines().enumerate() {
                let entry = line.split('#').next().unwrap_or("").trim();
                if !entry.is_empty() {
                    set.add(entry, || format!("API_TOKENS_FILE line {}", n + 1))?;
                }
            }
        }
        Ok(set)
    }

    /// Parses `API_TOKENS`-style text (tests and examples).
    pub fn parse(list: &str) -> Result<Self, String> {
        Self::load(Some(list), None)
    }

    fn add(&mut self, entry: &str, place: impl Fn() -> String) -> Result<(), String> {
        let (scope, secret) = entry
            .split_once(':')
            .ok_or_else(|| format!("{} must be scope:token", place()))?;
        let scope = Scope::parse(scope.trim())
            .ok_or_else(|| format!("{}: the scope must be read, write or admin", place()))?;
        let digest = parse_secret(secret.trim()).map_err(|why| format!("{}: {why}", place()))?;
        if self
            .entries
            .iter()
            .any(|e| bool::from(e.digest.ct_eq(&digest)))
        {
            return Err(format!(
                "{}: the same token is configured twice; give each token one scope",
                place()
            ));
        }
        self.entries.push(Entry { scope, digest });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The configured token `presented` is, if any. Every digest is compared, in constant time.
    pub fn verify(&self, presented: &str) -> Option<Grant> {
        let presented = digest(presented);
        let mut found = None;
        for (id, entry) in self.entries.iter().enumerate() {
            let equal: bool = entry.digest.ct_eq(&presented).into();
            if equal && found.is_none() {
                found = Some(Grant {
                    id,
                    scope: entry.scope,
                });
            }
        }
        found
    }
}

/// A token in clear, or `sha256:` and the 64 hex digits of its digest.
pub fn parse_secret(secret: &str) -> Result<TokenDigest, String> {
    if let Some(hex) = secret.strip_prefix("sha256:") {
        return parse_hex_digest(hex)
            .ok_or_else(|| "sha256: must be followed by 64 hexadecimal digits".to_owned());
    }
    if secret.contains(":prefix=") {
        return Err("tokens restricted to a sensor prefix are not supported; \
                    give each sensor fleet its own write token"
            .to_owned());
    }
    if secret.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "a token must have at least {MIN_TOKEN_CHARS} characters"
        ));
    }
    if !secret.chars().all(is_token_char) {
        return Err(
            "a token may hold only letters, digits and - . _ ~ + / = characters".to_owned(),
        );
    }
    Ok(digest(secret))
}

/// The characters of RFC 6750's `b64token`, which also covers hex and base64url tokens.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

fn parse_hex_digest(hex: &str) -> Option<TokenDigest> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "read-token-0123456789";
    const WRITE: &str = "write-token-0123456789";

    fn hex(digest: TokenDigest) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn clear_and_hashed_entries_verify_with_their_scope() {
        let set =
            TokenSet::parse(&format!("read:{READ}, write:sha256:{}", hex(digest(WRITE)))).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.verify(READ),
            Some(Grant {
                id: 0,
                scope: Scope::Read
            })
        );
        assert_eq!(set.verify(WRITE).map(|g| g.scope), Some(Scope::Write));
        assert_eq!(set.verify("read-token-012345678"), None);
        assert_eq!(set.verify(""), None);
        // The digest itself is not a token.
        assert_eq!(set.verify(&hex(digest(WRITE))), None);
    }

    #[test]
    fn the_file_has_one_entry_a_line_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            format!("# dashboards\nread:{READ}  # grafana\n\n  admin:{WRITE}\n"),
        )
        .unwrap();
        let set = TokenSet::load(Some("write:another-token-0123456789"), Some(&path)).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.verify(WRITE).map(|g| g.scope), Some(Scope::Admin));
    }

    #[test]
    fn bad_entries_are_named_by_position_never_by_content() {
        for (list, needle) in [
            ("reader:abcdefghijklmnopqrstuvwxyz", "scope"),
            ("abcdefghijklmnopqrstuvwxyz", "scope:token"),
            ("read:short", "at least 16"),
            ("read:sha256:abcd", "64 hexadecimal"),
            ("read:with space in the token", "only letters"),
            (
                "write:abcdefghijklmnopqrstuvwxyz:prefix=gh-",
                "not supported",
            ),
            (
                "read:abcdefghijklmnopqrstuvwxyz,write:abcdefghijklmnopqrstuvwxyz",
                "twice",
            ),
        ] {
            let error = TokenSet::parse(list).unwrap_err();
            assert!(error.contains(needle), "{list}: {error}");
            assert!(error.starts_with("API_TOKENS entry"), "{error}");
            assert!(!error.contains("abcdefghij"), "the token leaked: {error}");
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn admin_allows_everything_and_the_others_only_their_own() {
        for needed in [Scope::Read, Scope::Write, Scope::Admin] {
            assert!(Scope::Admin.allows(needed));
        }
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        assert!(!Scope::Write.allows(Scope::Read));
        assert!(!Scope::Write.allows(Scope::Admin));
    }

    #[test]
    fn debug_output_never_shows_digests() {
        let set = TokenSet::parse(&format!("read:{READ}")).unwrap();
        let shown = format!("{set:?}");
        assert!(!shown.contains(&hex(digest(READ))[..8]), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
