//! Reading README.md: its example blocks, the `readme-test:` directives before them, and the
//! commands and expected-output lines inside them.

/// One example block of README.md.
#[derive(Debug)]
pub struct Block {
    /// 1-based line of the opening fence, for messages.
    pub line: usize,
    pub env: Vec<(String, String)>,
    pub commands: Vec<Example>,
}

/// One command and the output written under it.
#[derive(Debug)]
pub struct Example {
    pub line: usize,
    pub command: String,
    pub expected: Vec<String>,
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

pub fn is_curl(command: &str) -> bool {
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
pub fn parse_readme(markdown: &str) -> Vec<Block> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
