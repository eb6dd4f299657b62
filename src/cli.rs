//! The command line: `telemetry [serve|healthcheck|verify|help|version]`. There are three commands and
//! no flags besides help and version (every setting is an environment variable), so a match on
//! the first argument does what `clap` would, without its compile time; the settings' help is
//! printed from [`crate::config::VARIABLES`], the table the parser reads.

use std::fmt::Write;

use crate::config::VARIABLES;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the service (also with no argument).
    Serve,
    /// Probe a running instance's `GET /api` on `PORT`.
    Healthcheck,
    /// Check the embedded database in `DATA_DIR` offline.
    Verify,
    Help,
    Version,
}

/// The commands, in the order `--help` lists them: spelling(s) and what each does.
const COMMANDS: [(&str, &str); 5] = [
    (
        "serve",
        "run the service (the default when no command is given)",
    ),
    (
        "healthcheck",
        "GET /api on 127.0.0.1:$PORT; exit 0 when it answers 200, else 1 (for containers)",
    ),
    (
        "verify",
        "check the embedded database in DATA_DIR offline: aggregates and rollups equal a \
         recomputation from the readings; prints what differs; exit 0 when consistent, 1 when \
         not, 2 when it cannot be read",
    ),
    ("help", "print this help (also -h, --help)"),
    ("version", "print the version (also -V, --version)"),
];

impl Command {
    /// Parses the arguments after the program name; the error is one line for stderr.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let command = match args.first().map(String::as_str) {
            None | Some("serve") => Self::Serve,
            Some("healthcheck") => Self::Healthcheck,
            Some("verify") => Self::Verify,
            Some("help" | "-h" | "--help") => Self::Help,
            Some("version" | "-V" | "--version") => Self::Version,
            Some(other) => {
                return Err(format!(
                    "unknown command {other:?}; usage: telemetry [serve|healthcheck|verify|help|version] \
                     (telemetry --help lists the settings)"
                ));
            }
        };
        match args.get(1) {
            Some(extra) => Err(format!(
                "unexpected argument {extra:?}: settings are environment variables (telemetry --help)"
            )),
            None => Ok(command),
        }
    }
}

/// `telemetry 0.1.0`
pub fn version() -> String {
    format!("telemetry {}", env!("CARGO_PKG_VERSION"))
}

/// The text of `telemetry --help`.
pub fn help() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", version(), env!("CARGO_PKG_DESCRIPTION"));
    let _ = writeln!(out);
    let _ = writeln!(out, "Usage: telemetry [COMMAND]");
    let _ = writeln!(out);
    let _ = writeln!(out, "Commands:");
    for (name, meaning) in COMMANDS {
        let _ = writeln!(out, "  {name:<13}{meaning}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Settings (environment variables, default in brackets):"
    );
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for variable in VARIABLES {
        let default = variable.default.unwrap_or("unset");
        let _ = writeln!(out, "  {:<width$}  [{default}]", variable.name);
        let _ = writeln!(out, "  {:<width$}  {}", "", variable.meaning);
    }
    let _ = writeln!(
        out,
        "  AWS settings (region, credentials, AWS_ENDPOINT_URL) come from the AWS SDK's chain."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Exit codes: 0 after a clean shutdown, 2 for a configuration or start-up problem (one \
         line on stderr naming the variable), 1 otherwise."
    );
    let _ = writeln!(
        out,
        "Docs: README.md in the source repository (API, settings, storage, deployment); a \
         running instance serves its API description at /openapi.json."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Command::parse(&args)
    }

    #[test]
    fn every_spelling_of_help_and_version_is_understood() {
        assert_eq!(parse(&[]), Ok(Command::Serve));
        assert_eq!(parse(&["serve"]), Ok(Command::Serve));
        assert_eq!(parse(&["healthcheck"]), Ok(Command::Healthcheck));
        assert_eq!(parse(&["verify"]), Ok(Command::Verify));
        for help in ["help", "-h", "--help"] {
            assert_eq!(parse(&[help]), Ok(Command::Help));
        }
        for version in ["version", "-V", "--version"] {
            assert_eq!(parse(&[version]), Ok(Command::Version));
        }
        assert!(parse(&["frobnicate"]).unwrap_err().contains("frobnicate"));
        assert!(
            parse(&["serve", "--port=1"])
                .unwrap_err()
                .contains("--port=1")
        );
    }

    #[test]
    fn help_lists_every_command_and_every_variable_with_its_default() {
        let help = help();
        for (name, _) in COMMANDS {
            assert!(help.contains(&format!("  {name} ")), "{name} in {help}");
        }
        for variable in VARIABLES {
            let default = variable.default.unwrap_or("unset");
            assert!(
                help.lines()
                    .any(|line| line.trim_start().starts_with(variable.name)
                        && line.ends_with(&format!("[{default}]"))),
                "{} [{default}] in {help}",
                variable.name
            );
            assert!(help.contains(variable.meaning), "{}", variable.meaning);
        }
    }
}
