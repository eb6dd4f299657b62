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

mod markdown;
mod pattern;
mod run;

use std::collections::HashMap;
use std::path::Path;

use markdown::{is_curl, parse_readme};
use run::{Server, check, run};

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
