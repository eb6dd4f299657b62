//! Where a request carries its token.
//!
//! - `Authorization: Bearer <token>` (RFC 6750) and `Authorization: Token <token>` (what the
//!   InfluxDB 2 clients and Telegraf send) on every route;
//! - on the InfluxDB v1 write route only, what the v1 clients send: `Authorization: Basic`
//!   with the token as the password (any user name), or the `p` query parameter (`u` is
//!   ignored).
//!
//! The scheme name is case-insensitive (RFC 9110 section 11.1).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No credentials at all.
    Missing,
    /// An `Authorization` header this route does not understand (unknown scheme, bad
    /// encoding, empty token).
    Malformed,
    /// A token to verify.
    Token(String),
}

/// Which forms a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forms {
    /// `Bearer` and `Token`.
    Standard,
    /// Also Basic and the `p` query parameter (the InfluxDB v1 write route).
    InfluxV1,
}

/// Reads the credentials of a request from its `Authorization` header (raw bytes, if any) and
/// its `p` query parameter (already percent-decoded, if any).
pub fn presented(authorization: Option<&[u8]>, p_query: Option<&str>, forms: Forms) -> Presented {
    if let Some(header) = authorization {
        return from_authorization(header, forms);
    }
    match p_query {
        Some(token) if forms == Forms::InfluxV1 && !token.is_empty() => {
            Presented::Token(token.to_owned())
        }
        Some(_) if forms == Forms::InfluxV1 => Presented::Malformed,
        _ => Presented::Missing,
    }
}

fn from_authorization(header: &[u8], forms: Forms) -> Presented {
    let Ok(header) = std::str::from_utf8(header) else {
        return Presented::Malformed;
    };
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        Some(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") && forms == Forms::InfluxV1 {
        basic_password(rest)
    } else {
        None
    };
    match token {
        Some(token) if !token.is_empty() && !token.contains(char::is_whitespace) => {
            Presented::Token(token)
        }
        _ => Presented::Malformed,
    }
}

/// The password of `Basic base64(user:password)`.
fn basic_password(encoded: &str) -> Option<String> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef";

    fn token() -> Presented {
        Presented::Token(T.to_owned())
    }

    #[test]
    fn bearer_and_token_schemes_in_any_case() {
        for header in [
            format!("Bearer {T}"),
            format!("bearer {T}"),
            format!("Token {T}"),
            format!("TOKEN  {T} "),
        ] {
            assert_eq!(
                presented(Some(header.as_bytes()), None, Forms::Standard),
                token(),
                "{header}"
            );
        }
    }

    #[test]
    fn basic_and_query_only_on_the_v1_route() {
        let basic = format!("Basic {}", STANDARD.encode(format!("telegraf:{T}")));
        assert_eq!(
            presented(Some(basic.as_bytes()), None, Forms::InfluxV1),
            token()
        );
        assert_eq!(
            presented(Some(basic.as_bytes()), None, Forms::Standard),
            Presented::Malformed
        );
        assert_eq!(presented(None, Some(T), Forms::InfluxV1), token());
        assert_eq!(
            presented(None, Some(T), Forms::Standard),
            Presented::Missing
        );
        assert_eq!(
            presented(None, Some(""), Forms::InfluxV1),
            Presented::Malformed
        );
        // The header wins over the query.
        let bearer = format!("Bearer {T}");
        assert_eq!(
            presented(Some(bearer.as_bytes()), Some("other"), Forms::InfluxV1),
            token()
        );
    }

    #[test]
    fn nothing_is_missing_and_garbage_is_malformed() {
        assert_eq!(presented(None, None, Forms::InfluxV1), Presented::Missing);
        for header in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Digest abc",
            b"Bearer a b",
            b"\xff\xfe",
            b"Basic !!!",
            b"Basic dXNlcg==", // "user", no colon
        ] {
            assert_eq!(
                presented(Some(header), None, Forms::InfluxV1),
                Presented::Malformed,
                "{header:?}"
            );
        }
    }
}
