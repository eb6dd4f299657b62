//! Matching an answer against the output written in README.md: whitespace is free, and
//! `...`, `<time>` and `<id>` stand for text that changes from run to run.

/// A piece of an expected output.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// Whitespace in the README: any whitespace, or none.
    Space,
    /// `...`
    Any,
    /// `<time>`
    Time,
    /// `<id>`
    Id,
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = pattern.trim();
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("...") {
            tokens.push(Token::Any);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<time>") {
            tokens.push(Token::Time);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<id>") {
            tokens.push(Token::Id);
            rest = after;
        } else if c.is_whitespace() {
            if tokens.last() != Some(&Token::Space) {
                tokens.push(Token::Space);
            }
            rest = rest.trim_start();
        } else {
            tokens.push(Token::Char(c));
            rest = &rest[c.len_utf8()..];
        }
    }
    tokens
}

/// The length of the RFC 3339 time at the start of `text`, if there is one.
fn time_length(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes.len() >= range.end && bytes[range].iter().all(u8::is_ascii_digit)
    };
    let at = |i: usize, c: u8| bytes.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return None;
    }
    if !(at(10, b'T') && digits(11..13) && at(13, b':') && digits(14..16)) {
        return None;
    }
    if !(at(16, b':') && digits(17..19)) {
        return None;
    }
    let mut end = 19;
    if at(end, b'.') {
        end += 1;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if at(end, b'Z') {
        return Some(end + 1);
    }
    if (at(end, b'+') || at(end, b'-')) && digits(end + 1..end + 3) && at(end + 3, b':') {
        return digits(end + 4..end + 6).then_some(end + 6);
    }
    None
}

fn matches(tokens: &[Token], text: &str) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::Char(c) => text
            .strip_prefix(*c)
            .is_some_and(|after| matches(rest, after)),
        Token::Space => matches(rest, text.trim_start()),
        Token::Any => text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .any(|i| matches(rest, &text[i..])),
        Token::Time => time_length(text).is_some_and(|n| matches(rest, &text[n..])),
        Token::Id => {
            let digits = text.bytes().take_while(u8::is_ascii_digit).count();
            (1..=digits).any(|n| matches(rest, &text[n..]))
        }
    }
}

/// Does `output` (all of it, edges trimmed) match the README's `pattern`?
pub fn output_matches(pattern: &str, output: &str) -> bool {
    matches(&tokenize(pattern), output.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_what_they_say_and_nothing_else() {
        assert!(output_matches("Ok", "Ok\n"));
        assert!(!output_matches("Ok", "Okay"));
        assert!(output_matches(r#"{"a":1, "b":2}"#, r#"{"a":1,"b":2}"#));
        assert!(!output_matches(r#"{"a":1}"#, r#"{"a": 1}"#));
        assert!(output_matches(r#"{"id":"<id>"}"#, r#"{"id":"17"}"#));
        assert!(!output_matches(r#"{"id":"<id>"}"#, r#"{"id":"x"}"#));
        assert!(output_matches(
            r#"{"t":"<time>"}"#,
            r#"{"t":"2026-12-01T20:10:26.5Z"}"#
        ));
        assert!(output_matches("<time>", "2021-10-04T11:01:00+02:00"));
        assert!(!output_matches("<time>", "2021-10-04 11:01:00"));
        assert!(output_matches("[1, ...]", "[1,2,3]"));
        assert!(output_matches("a\n...\nz", "a\nb\nc\nz"));
        assert!(!output_matches("[1, ...]", "[2,3]"));
    }
}
