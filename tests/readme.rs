//! Executed documentation: every `curl` example of README.md runs against a fresh server and
//! must answer what the README says it answers. A wrong example fails CI.
//!
//! How README.md is read:
//! - Every fenced code block tagged `sh` that contains a `curl` command is an example block;
//!   blocks run in README order, their commands in block order, all against the same server
//!   (so later examples see the readings earlier ones stored).
//! - A command is a line that is not a `#` comment, with its continuation lines (a trailing
//!   `\` or an open quote). It runs in `bash -o pipefail`, with the real `curl`, after
//!   `localhost:8080` is rewritten to the test server's address; `curl` is given `-q -sS` and
//!   `-D` (to read the status), which do not change what it prints.
//! - The `# ` lines under a command are what it prints. When the first is a status line
//!   (`# HTTP/1.1 409 Conflict`, from `curl -i`), the status must match and each following
//!   `# name: value` line must be among the response headers (others may be present); the rest
//!   is the body. Without a status line the status must be 2xx. A command with no `#` lines
//!   only needs a 2xx status.
//! - Body matching: the written lines, joined by newlines, must match the whole output (leading
//!   and trailing whitespace ignored). Whitespace in the README matches any whitespace or none
//!   (so long JSON may be wrapped over several lines), and three placeholders stand for text
//!   that changes from run to run:
//!   - `...` any text, including none (an elision);
//!   - `<time>` an RFC 3339 time such as `2026-12-01T20:10:26.123Z`;
//!   - `<id>` one or more digits (a generated id).
//!
//! Directives: an HTML comment right before a block (blank lines allowed between) changes how
//! that one block runs; an unknown directive fails the test.
//! - `<!-- readme-test: env NAME=value NAME2=value2 -->` runs the block against a server
//!   started with those extra environment variables (values without spaces), e.g.
//!   `<!-- readme-test: env API_TOKENS=write:s3cret -->`. Blocks with the same settings share
//!   one server (started fresh for the first of them); the plain blocks share another.
//! - `<!-- readme-test: skip (reason) -->` does not run the block; the reason is required.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// One example block of README.md.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    env: Vec<(String, String)>,
    commands: Vec<Example>,
}

/// One command and the output written under it.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    expected: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Directive {
    Env(Vec<(String, String)>),
    Skip,
}

fn parse_directive(comment: &str, line: usize) -> Option<Directive> {
    let inner = comment
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let rest = inner.strip_prefix("readme-test:")?.trim();
    if let Some(reason) = rest.strip_prefix("skip") {
        let reason = reason.trim();
        assert!(
            reason.starts_with('(') && reason.ends_with(')') && reason.len() > 2,
            "README.md:{line}: `readme-test: skip` needs a reason in parentheses"
        );
        return Some(Directive::Skip);
    }
    if let Some(pairs) = rest.strip_prefix("env ") {
        let env = pairs
            .split_whitespace()
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or_else(|| {
                    panic!("README.md:{line}: `readme-test: env` takes NAME=value pairs")
                });
                (name.to_owned(), value.to_owned())
            })
            .collect();
        return Some(Directive::Env(env));
    }
    panic!("README.md:{line}: unknown directive {rest:?} (known: env NAME=value, skip (reason))");
}

/// True while `text` has an unclosed single or double quote (shell rules, simplified: no
/// escapes inside single quotes, backslash escapes inside double quotes).
fn open_quote(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some('\'') if c == '\'' => quote = None,
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None if escaped => escaped = false,
            None if c == '\\' => escaped = true,
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
    }
    quote.is_some()
}

fn is_curl(command: &str) -> bool {
    command
        .split(|c: char| c.is_whitespace() || c == '|' || c == '(' || c == ';')
        .any(|word| word == "curl")
}

/// Splits one `sh` block's lines into commands and the `#` lines written under each.
fn parse_commands(lines: &[(usize, &str)]) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for &(number, line) in lines {
        if let Some((start, mut command)) = pending.take() {
            command.push('\n');
            command.push_str(line);
            if line.ends_with('\\') || open_quote(&command) {
                pending = Some((start, command));
            } else {
                examples.push(Example {
                    line: start,
                    command,
                    expected: Vec::new(),
                });
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(output) = trimmed.strip_prefix('#') {
            let example = examples.last_mut().unwrap_or_else(|| {
                panic!("README.md:{number}: an output line comes before any command")
            });
            example
                .expected
                .push(output.strip_prefix(' ').unwrap_or(output).to_owned());
            continue;
        }
        if line.ends_with('\\') || open_quote(line) {
            pending = Some((number, line.to_owned()));
        } else {
            examples.push(Example {
                line: number,
                command: line.to_owned(),
                expected: Vec::new(),
            });
        }
    }
    assert!(pending.is_none(), "README.md: a command is never closed");
    examples
}

/// The example blocks of a Markdown document, with their directives applied.
fn parse_readme(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut directive: Option<Directive> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("<!--") && line.contains("readme-test:") {
            directive = parse_directive(line, i + 1);
            i += 1;
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let fence_line = i + 1;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push((i + 1, lines[i]));
                i += 1;
            }
            i += 1; // the closing fence
            let this = directive.take();
            let is_sh = matches!(info.trim(), "sh" | "bash" | "shell" | "console");
            if !is_sh || !body.iter().any(|(_, l)| is_curl(l)) {
                assert!(
                    this.is_none(),
                    "README.md:{fence_line}: a readme-test directive before a block without curl"
                );
                continue;
            }
            let env = match this {
                Some(Directive::Skip) => continue,
                Some(Directive::Env(env)) => env,
                None => Vec::new(),
            };
            blocks.push(Block {
                line: fence_line,
                env,
                commands: parse_commands(&body),
            });
            continue;
        }
        assert!(
            line.is_empty() || directive.is_none(),
            "README.md:{}: a readme-test directive must come right before its code block",
            i + 1
        );
        i += 1;
    }
    blocks
}

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
fn output_matches(pattern: &str, output: &str) -> bool {
    matches(&tokenize(pattern), output.trim())
}

/// The `telemetry` binary on 127.0.0.1, any port, a fresh data directory.
struct Server {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", "0")
            .env("DATA_DIR", dir.path())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,telemetry=info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("the server logs `listening` before it exits")
                .expect("a readable log");
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "listening" {
                break event["port"].as_u64().expect("a port");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            address: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one command printed, and the status and headers of its (last) response.
struct Run {
    stdout: String,
    stderr: String,
    success: bool,
    status: Option<u16>,
    headers: Vec<(String, String)>,
}

fn run(example: &Example, server: &Server, scratch: &Path) -> Run {
    let headers_file = scratch.join("headers");
    let _ = std::fs::remove_file(&headers_file);
    let mut command = example.command.replace("localhost:8080", &server.address);
    if is_curl(&command) {
        // `-q` (first) ignores a ~/.curlrc, so only the README's arguments shape the request.
        let extra = format!("curl -q -sS -D {} ", headers_file.display());
        // Only the first `curl` of a pipeline: one response per command.
        let at = command.find("curl ").expect("is_curl found it");
        command.replace_range(at..at + "curl ".len(), &extra);
    }
    let output = Command::new("bash")
        .args(["-o", "pipefail", "-c", &command])
        .current_dir(scratch)
        // A proxy from the environment must not stand between curl and the test server.
        .env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("bash runs");
    let raw_headers = std::fs::read_to_string(&headers_file).unwrap_or_default();
    // With redirects or `100 Continue` there are several header blocks: the last one counts.
    let last = raw_headers
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .last()
        .unwrap_or("");
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
        status,
        headers,
    }
}

fn is_header_line(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Checks one command's run against the README; the error says what differs.
fn check(example: &Example, run: &Run) -> Result<(), String> {
    if !run.success {
        return Err(format!("the command failed: {}", run.stderr.trim()));
    }
    let mut expected = example.expected.iter().map(String::as_str).peekable();
    let mut stdout = run.stdout.as_str();
    if is_curl(&example.command) {
        let status = run.status.ok_or("no HTTP response")?;
        match expected.peek().filter(|line| line.starts_with("HTTP/")) {
            Some(status_line) => {
                let written: u16 = status_line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .ok_or_else(|| format!("cannot read the status of {status_line:?}"))?;
                if written != status {
                    return Err(format!("status {status}, README says {status_line:?}"));
                }
                expected.next();
                while let Some(line) = expected.next_if(|line| is_header_line(line)) {
                    let (name, value) = line.split_once(": ").expect("a header line");
                    let found = run.headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case(name.trim()) && output_matches(value, v)
                    });
                    if !found {
                        return Err(format!("no header {line:?} in {:?}", run.headers));
                    }
                }
                // `curl -i` prints the headers before the body: compare the body alone.
                if stdout.starts_with("HTTP/") {
                    stdout = stdout.split_once("\n\n").map_or("", |(_, body)| body);
                }
            }
            None if !(200..300).contains(&status) => {
                return Err(format!(
                    "status {status} (the README shows no status line, so 2xx is expected); body: {}",
                    run.stdout.trim()
                ));
            }
            None => {}
        }
    }
    let body: Vec<&str> = expected.collect();
    if body.is_empty() {
        return Ok(());
    }
    let pattern = body.join("\n");
    if output_matches(&pattern, stdout) {
        Ok(())
    } else {
        Err(format!(
            "the output differs.\nREADME:\n{pattern}\nactual:\n{}",
            stdout.trim()
        ))
    }
}

#[test]
fn every_curl_example_in_the_readme_answers_what_it_says() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md is readable");
    let blocks = parse_readme(&readme);
    assert!(
        !blocks.is_empty(),
        "README.md has curl examples; the parser found none"
    );
    // Before anything runs: every curl addresses the test server (a block that cannot, such as
    // one against AWS, is skipped with its reason).
    for example in blocks.iter().flat_map(|block| &block.commands) {
        assert!(
            !is_curl(&example.command) || example.command.contains("localhost:8080"),
            "README.md:{}: a curl example must address localhost:8080 (or its block be skipped \
             with a reason): {}",
            example.line,
            example.command
        );
    }
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut servers: HashMap<Vec<(String, String)>, Server> = HashMap::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        let server = servers
            .entry(block.env.clone())
            .or_insert_with(|| Server::start(&block.env));
        for example in &block.commands {
            let result = run(example, server, scratch.path());
            ran += 1;
            if let Err(why) = check(example, &result) {
                failures.push(format!(
                    "README.md:{} (block at line {}): {}\n{why}",
                    example.line, block.line, example.command
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} README examples are wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[cfg(test)]
mod parser {
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

    #[test]
    fn commands_span_continuations_and_quotes_and_own_the_lines_under_them() {
        let block = "curl -X PUT localhost:8080/a \\\n  -d '[\n 1\n]'\n# Ok\n\ncurl localhost:8080/b\n# HTTP/1.1 200 OK\n# x: y\n# body";
        let lines: Vec<(usize, &str)> = block.lines().enumerate().collect();
        let examples = parse_commands(&lines);
        assert_eq!(examples.len(), 2);
        assert!(examples[0].command.ends_with("]'"));
        assert_eq!(examples[0].expected, ["Ok"]);
        assert_eq!(examples[1].expected, ["HTTP/1.1 200 OK", "x: y", "body"]);
    }

    #[test]
    fn directives_apply_to_the_next_block_only() {
        let markdown = "<!-- readme-test: env A=1 B=2 -->\n\n```sh\ncurl localhost:8080/x\n```\n\
                        <!-- readme-test: skip (needs AWS) -->\n```sh\ncurl https://aws\n```\n\
                        ```sh\ncurl localhost:8080/y\n```\n```sh\ncargo run\n```\n";
        let blocks = parse_readme(markdown);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0].env,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
        assert!(blocks[1].env.is_empty());
        assert!(blocks[1].commands[0].command.ends_with("/y"));
    }
}

#[test]
fn the_readme_configuration_table_matches_the_one_the_parser_reads() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    for variable in telemetry::config::VARIABLES {
        let default = variable
            .default
            .map_or_else(|| "—".to_owned(), |default| format!("`{default}`"));
        let row = format!("| `{}` | {default} |", variable.name);
        assert!(
            readme.lines().any(|line| line.starts_with(&row)),
            "README.md's configuration table needs the row {row} ... (src/config.rs VARIABLES)"
        );
    }
}
