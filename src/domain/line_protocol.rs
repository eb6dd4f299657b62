//! InfluxDB line protocol, the syntax: `measurement[,tag=value...] field=value[,...] [timestamp]`.
//!
//! Written here rather than taken from the `influxdb-line-protocol` crate because that crate
//! turns float fields into `f64`, and this service judges every number on its literal digits
//! (see `reading.rs`). The parser follows InfluxDB's documented syntax:
//! - measurement: commas and spaces escaped with `\`; tag keys, tag values and field keys:
//!   commas, equals signs and spaces escaped; a backslash before any other character is itself;
//! - field values: floats (`1`, `-1.5`, `1e3`), integers (`1i`), unsigned integers (`1u`),
//!   double-quoted strings (`\"` and `\\` escaped; a string may span lines) and booleans
//!   (`t`, `T`, `true`, `True`, `TRUE` and the same for false);
//! - an optional integer timestamp; blank lines, `#` comments, `\r\n` endings and leading
//!   whitespace are allowed.
//!
//! Fields keep their text; tokens are borrowed from the body unless they hold escapes, so
//! memory is linear in the body.

use std::borrow::Cow;

/// A field's value, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// A float literal: `21.5`, `-3`, `1e-3`.
    Float(&'a str),
    /// An integer, without its `i` suffix.
    Integer(&'a str),
    /// An unsigned integer, without its `u` suffix.
    Unsigned(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    Boolean(bool),
}

impl FieldValue<'_> {
    /// The decimal text of a numeric field, `None` for strings and booleans.
    pub fn numeric_text(&self) -> Option<&str> {
        match self {
            Self::Float(text) | Self::Integer(text) | Self::Unsigned(text) => Some(text),
            Self::String(_) | Self::Boolean(_) => None,
        }
    }
}

/// One line of line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based number of the physical line it starts on.
    pub number: usize,
    pub measurement: Cow<'a, str>,
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    pub timestamp: Option<i64>,
}

impl Line<'_> {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn field(&self, key: &str) -> Option<&FieldValue<'_>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A line that is not line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Lines of a body, one at a time: `Some(Ok(line))`, `Some(Err(..))` for a malformed line
/// (the parser then resumes at the next physical line), `None` at the end.
pub struct Lines<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

pub fn lines(text: &str) -> Lines<'_> {
    Lines {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    }
}

const MEASUREMENT_ESCAPES: &[u8] = b", ";
const KEY_ESCAPES: &[u8] = b",= ";

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.skip_blanks();
            match self.peek() {
                None => return None,
                Some(b'\n') => self.newline(),
                Some(b'#') => self.skip_rest_of_line(),
                Some(_) => break,
            }
        }
        let number = self.line;
        let parsed = self.line_body(number);
        if parsed.is_err() {
            self.skip_rest_of_line();
        }
        Some(parsed.map_err(|message| SyntaxError {
            line: number,
            message,
        }))
    }
}

impl<'a> Lines<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    fn skip_rest_of_line(&mut self) {
        match self.bytes[self.pos..].iter().position(|b| *b == b'\n') {
            Some(offset) => {
                self.pos += offset;
                self.newline();
            }
            None => self.pos = self.bytes.len(),
        }
    }

    fn line_body(&mut self, number: usize) -> Result<Line<'a>, String> {
        let measurement = self.token(b", ", MEASUREMENT_ESCAPES);
        if measurement.is_empty() {
            return Err("missing measurement".into());
        }
        let mut tags = Vec::new();
        while self.peek() == Some(b',') {
            self.pos += 1;
            let key = self.key("tag")?;
            let value = self.token(b", ", KEY_ESCAPES);
            if value.is_empty() {
                return Err(format!("missing value of tag {key:?}"));
            }
            tags.push((key, value));
        }
        if !self.spaces() {
            return Err("missing fields (expected a space after the measurement and tags)".into());
        }
        let mut fields = Vec::new();
        loop {
            let key = self.key("field")?;
            let value = self.field_value(&key)?;
            fields.push((key, value));
            if self.peek() == Some(b',') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let timestamp = if self.spaces()
            && self
                .peek()
                .is_some_and(|b| !matches!(b, b'\n' | b'\r' | b'\t'))
        {
            Some(self.timestamp()?)
        } else {
            None
        };
        self.skip_blanks();
        match self.peek() {
            None => {}
            Some(b'\n') => self.newline(),
            Some(_) => return Err("unexpected text after the fields and timestamp".into()),
        }
        Ok(Line {
            number,
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    /// One or more spaces; `false` when there were none.
    fn spaces(&mut self) -> bool {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos > start
    }

    /// A tag or field key and its `=`.
    fn key(&mut self, what: &str) -> Result<Cow<'a, str>, String> {
        let key = self.token(b",= ", KEY_ESCAPES);
        if key.is_empty() {
            return Err(format!("missing {what} key"));
        }
        if self.peek() != Some(b'=') {
            return Err(format!("missing '=' after {what} key {key:?}"));
        }
        self.pos += 1;
        Ok(key)
    }

    /// Text up to an unescaped byte of `stops` or the end of the line.
    fn token(&mut self, stops: &[u8], escapes: &[u8]) -> Cow<'a, str> {
        let start = self.pos;
        let mut escaped = false;
        while let Some(b) = self.peek() {
            if b == b'\\'
                && self
                    .bytes
                    .get(self.pos + 1)
                    .is_some_and(|n| escapes.contains(n))
            {
                escaped = true;
                self.pos += 2;
            } else if b == b'\n' || stops.contains(&b) {
                break;
            } else {
                self.pos += 1;
            }
        }
        let raw = &self.text[start..self.pos];
        if escaped {
            Cow::Owned(unescape(raw, escapes))
        } else {
            Cow::Borrowed(raw)
        }
    }

    fn field_value(&mut self, key: &str) -> Result<FieldValue<'a>, String> {
        if self.peek() == Some(b'"') {
            return self.string_value(key);
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b',' | b' ' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        classify(&self.text[start..self.pos]).map_err(|problem| format!("field {key:?}: {problem}"))
    }

    fn string_value(&mut self, key: &str) -> Result<FieldValue<'a>, String> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(format!("field {key:?}: unterminated string")),
                Some(b'\\') if matches!(self.bytes.get(self.pos + 1), Some(b'"' | b'\\')) => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(b'"') => break,
                Some(b'\n') => self.newline(),
                Some(_) => self.pos += 1,
            }
        }
        let raw = &self.text[start..self.pos];
        self.pos += 1;
        Ok(FieldValue::String(if escaped {
            Cow::Owned(unescape(raw, b"\"\\"))
        } else {
            Cow::Borrowed(raw)
        }))
    }

    fn timestamp(&mut self) -> Result<i64, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid timestamp {text:?}"));
        }
        text.parse()
            .map_err(|_| format!("timestamp {text} is out of range"))
    }
}

fn unescape(raw: &str, escapes: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && next.is_ascii()
            && escapes.contains(&(next as u8))
        {
            out.push(next);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// A field value that is not a string: a boolean, `<int>i`, `<uint>u` or a float literal.
fn classify(token: &str) -> Result<FieldValue<'_>, String> {
    match token {
        "" => return Err("missing value".into()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Boolean(false)),
        _ => {}
    }
    if let Some(digits) = token.strip_suffix('i') {
        return digits
            .parse::<i64>()
            .map(|_| FieldValue::Integer(digits))
            .map_err(|_| format!("invalid integer {token:?}"));
    }
    if let Some(digits) = token.strip_suffix('u') {
        return match digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse::<u64>().is_ok() {
            true => Ok(FieldValue::Unsigned(digits)),
            false => Err(format!("invalid unsigned integer {token:?}")),
        };
    }
    if is_float_literal(token) {
        Ok(FieldValue::Float(token))
    } else {
        Err(format!("invalid number {token:?}"))
    }
}

/// `[-+]?(digits[.digits?] | .digits)([eE][-+]?digits)?`
fn is_float_literal(token: &str) -> bool {
    let unsigned = token.strip_prefix(['-', '+']).unwrap_or(token);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        !(int_part.is_empty() && frac_part.is_empty()) && digits(int_part) && digits(frac_part);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Line<'_> {
        let mut all = lines(text);
        let line = all.next().expect("a line").expect("well formed");
        assert!(all.next().is_none(), "one line only");
        line
    }

    fn error(text: &str) -> SyntaxError {
        lines(text).find_map(Result::err).expect("a malformed line")
    }

    #[test]
    fn a_full_line_is_read() {
        let line =
            one("temperature,sensorID=107,room=kitchen value=21.5,ok=true 1633338000000000000");
        assert_eq!(line.number, 1);
        assert_eq!(line.measurement, "temperature");
        assert_eq!(line.tag("sensorID"), Some("107"));
        assert_eq!(line.tag("room"), Some("kitchen"));
        assert_eq!(line.field("value"), Some(&FieldValue::Float("21.5")));
        assert_eq!(line.field("ok"), Some(&FieldValue::Boolean(true)));
        assert_eq!(line.timestamp, Some(1_633_338_000_000_000_000));
    }

    #[test]
    fn every_field_type_is_read() {
        let line = one(r#"m f=-1.5e3,i=-12i,u=12u,s="a \"q\" \\ b",b=F,g=.5,h=5."#);
        assert_eq!(line.field("f"), Some(&FieldValue::Float("-1.5e3")));
        assert_eq!(line.field("i"), Some(&FieldValue::Integer("-12")));
        assert_eq!(line.field("u"), Some(&FieldValue::Unsigned("12")));
        assert_eq!(
            line.field("s"),
            Some(&FieldValue::String(r#"a "q" \ b"#.into()))
        );
        assert_eq!(line.field("b"), Some(&FieldValue::Boolean(false)));
        assert_eq!(line.field("g"), Some(&FieldValue::Float(".5")));
        assert_eq!(line.field("h"), Some(&FieldValue::Float("5.")));
        assert_eq!(line.timestamp, None);
    }

    #[test]
    fn escapes_are_undone() {
        let line = one(r"my\ meas\,ure,tag\ key=a\,b\=c\ d,x=C:\dir field\=k=1");
        assert_eq!(line.measurement, "my meas,ure");
        assert_eq!(line.tag("tag key"), Some("a,b=c d"));
        assert_eq!(line.tag("x"), Some(r"C:\dir"));
        assert_eq!(line.field("field=k"), Some(&FieldValue::Float("1")));
    }

    #[test]
    fn comments_blank_lines_crlf_and_multiline_strings_keep_line_numbers() {
        let text = "# a comment\r\n\n  m,s=1 v=1 10\r\nm s=\"two\nlines\",v=2\n\t\nm v=3  \n";
        let all: Vec<Line<'_>> = lines(text).map(Result::unwrap).collect();
        let numbers: Vec<usize> = all.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [3, 4, 7]);
        assert_eq!(all[0].timestamp, Some(10));
        assert_eq!(
            all[1].field("s"),
            Some(&FieldValue::String("two\nlines".into()))
        );
    }

    #[test]
    fn malformed_lines_are_named_and_parsing_resumes() {
        let text = "m v=1\nm\nm v=\nm v=1 x\nm,t v=1\nm v=\"open\nm v=2";
        let results: Vec<_> = lines(text).collect();
        let errors: Vec<usize> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.line))
            .collect();
        assert_eq!(errors, [2, 3, 4, 5, 6]);
        assert!(results[0].is_ok());
    }

    #[test]
    fn bad_values_are_syntax_errors() {
        for text in [
            "m v=NaN",
            "m v=inf",
            "m v=1.2.3",
            "m v=1e",
            "m v=99999999999999999999i",
            "m v=-1u",
            "m v=abc",
            "m v=1 12.5",
            "m v=1 99999999999999999999",
            " v=1",
            "m,=x v=1",
            "m =1",
        ] {
            let found = error(text);
            assert_eq!(found.line, 1, "{text}");
            assert!(!found.message.is_empty());
        }
    }

    #[test]
    fn non_ascii_text_is_kept() {
        let line = one("température,capteur=süd wert=1 -5");
        assert_eq!(line.measurement, "température");
        assert_eq!(line.tag("capteur"), Some("süd"));
        assert_eq!(line.timestamp, Some(-5));
    }

    proptest::proptest! {
        /// Any text is answered without a panic, and a line's number never exceeds the lines
        /// of the text.
        #[test]
        fn any_text_is_answered(text in "[a-z0-9 ,=\\\\\"#.\n\r\tié-]{0,200}") {
            let physical = text.matches('\n').count() + 1;
            for result in lines(&text).take(1000) {
                let number = match result {
                    Ok(line) => line.number,
                    Err(error) => error.line,
                };
                proptest::prop_assert!(number >= 1 && number <= physical);
            }
        }

        /// Escaped keys and values read back as written.
        #[test]
        fn escaping_round_trips(
            measurement in "[a-z ,=\\\\é]{1,12}",
            key in "[a-z ,=\\\\é]{1,12}",
            value in "[a-z ,=\\\\é]{1,12}",
        ) {
            // Escape what the parser would otherwise read as structure. A trailing backslash
            // would escape the separator after it, so it is written doubled-free by ending
            // each token with a plain letter.
            let esc = |s: &str, set: &[char]| {
                let mut out = String::new();
                for c in s.chars() {
                    if set.contains(&c) { out.push('\\'); }
                    out.push(c);
                }
                out.push('x');
                out
            };
            let text = format!(
                "{},{}={} v=1",
                esc(&measurement, &[',', ' ']),
                esc(&key, &[',', '=', ' ']),
                esc(&value, &[',', '=', ' ']),
            );
            let mut parsed = lines(&text);
            let line = parsed.next().unwrap();
            let line = line.map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e:?}")))?;
            let want_key = format!("{key}x");
            let want_value = format!("{value}x");
            let want_measurement = format!("{measurement}x");
            proptest::prop_assert_eq!(line.measurement.as_ref(), want_measurement.as_str());
            proptest::prop_assert_eq!(line.tag(&want_key), Some(want_value.as_str()));
        }
    }
}
