//! virsh's command-line grammar.
//!
//! Words become commands the way virsh 9.0's `vshCommandParse` makes them:
//!
//! * the first word names the command (`unknown command: 'x'` otherwise);
//! * `--name` and `--name=value` give options; a value-taking option without
//!   `=` takes the next word (`expected syntax: --name <string>` if none);
//! * `--` makes every later word data;
//! * other words fill the command's positional options in declaration
//!   order (`unexpected data 'x'` when none is left), the last `argv`
//!   option swallowing the rest;
//! * `--help` anywhere turns the command into `help <command>`;
//! * missing required options are all reported, in declaration order.
//!
//! A single command-line argument is parsed as a command string instead
//! (quotes, backslashes, `;` and newlines separating commands, `#`
//! comments), as virsh does.

use std::fmt;

use super::opts::{CmdDef, OptKind};

/// Looks commands up by name.
pub trait CommandSet {
    /// The command called `name`.
    fn find(&self, name: &str) -> Option<&'static CmdDef>;
}

/// One option given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenOpt {
    /// The option's name.
    pub name: &'static str,
    /// Its kind.
    pub kind: OptKind,
    /// The value (`None` for flags).
    pub value: Option<String>,
}

/// A parsed command, ready to run.
#[derive(Debug, Clone)]
pub struct ParsedCmd {
    /// What runs.
    pub def: &'static CmdDef,
    /// Options in the order given.
    pub opts: Vec<GivenOpt>,
}

impl ParsedCmd {
    /// The command's name.
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// True when the option was given (virsh's `vshCommandOptBool`, which
    /// is true for any given option, flag or not).
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|o| o.name == name)
    }

    /// The raw value of a value-taking option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.value.as_deref())
    }

    /// The values of an `argv` option, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.opts
            .iter()
            .filter(|o| o.name == name)
            .filter_map(|o| o.value.as_deref())
            .collect()
    }

    /// Whether the option allows an empty value.
    pub fn empty_ok(&self, name: &str) -> bool {
        self.def.opt(name).is_some_and(|(_, o)| o.empty_ok)
    }
}

/// A command line virsh would refuse before running anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first word is no command.
    #[error("unknown command: '{0}'")]
    UnknownCommand(String),
    /// `--x` names no option of the command.
    #[error("command '{cmd}' doesn't support option --{opt}")]
    UnknownOption {
        /// Command name.
        cmd: String,
        /// Option name as given.
        opt: String,
    },
    /// An option given twice.
    #[error("option --{0} already seen")]
    AlreadySeen(String),
    /// A value-taking option at the end of the line.
    #[error("expected syntax: --{opt} <{what}>")]
    ExpectedValue {
        /// Option name.
        opt: String,
        /// `string` or `number`.
        what: &'static str,
    },
    /// `--flag=value` for a flag.
    #[error("invalid '=' after option --{0}")]
    InvalidEquals(String),
    /// A bare word with no positional option left to fill.
    #[error("unexpected data '{0}'")]
    UnexpectedData(String),
    /// Required options missing (all of them, in declaration order).
    #[error("{}", missing_lines(.cmd, .missing))]
    MissingRequired {
        /// Command name.
        cmd: String,
        /// `(name, positional)` of each missing option.
        missing: Vec<(String, bool)>,
    },
    /// A command string ends in a backslash.
    #[error("dangling \\")]
    Dangling,
    /// A command string has an unclosed double quote.
    #[error("missing \"")]
    MissingQuote,
    /// An empty command string: virsh fails without a message.
    #[error("")]
    Empty,
}

fn missing_lines(cmd: &str, missing: &[(String, bool)]) -> String {
    missing
        .iter()
        .map(|(name, positional)| {
            if *positional {
                format!("command '{cmd}' requires <{name}> option")
            } else {
                format!("command '{cmd}' requires --{name} option")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl ParseError {
    /// The `error: ` lines virsh prints, without the prefix (none for
    /// [`ParseError::Empty`]).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ParseError::Empty => Vec::new(),
            other => other.to_string().lines().map(str::to_owned).collect(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Arg(String),
    SubcmdEnd,
    End,
}

trait Tokens {
    fn next_token(&mut self) -> Result<Token, ParseError>;
}

struct ArgvTokens<'a> {
    args: std::slice::Iter<'a, String>,
}

impl Tokens for ArgvTokens<'_> {
    fn next_token(&mut self) -> Result<Token, ParseError> {
        Ok(match self.args.next() {
            Some(a) => Token::Arg(a.clone()),
            None => Token::End,
        })
    }
}

struct StringTokens<'a> {
    rest: &'a [u8],
}

impl Tokens for StringTokens<'_> {
    fn next_token(&mut self) -> Result<Token, ParseError> {
        let mut p = self.rest;
        loop {
            match p {
                [b' ' | b'\t', tail @ ..] => p = tail,
                [b'\\', b'\n', tail @ ..] => p = tail,
                _ => break,
            }
        }
        match p.first() {
            None => {
                self.rest = p;
                return Ok(Token::End);
            }
            Some(b';' | b'\n') => {
                self.rest = &p[1..];
                return Ok(Token::SubcmdEnd);
            }
            Some(b'#') => {
                let end = p.iter().position(|&c| c == b'\n');
                self.rest = match end {
                    Some(i) => &p[i + 1..],
                    None => &p[p.len()..],
                };
                return Ok(Token::SubcmdEnd);
            }
            _ => {}
        }
        let mut out = Vec::new();
        let (mut single, mut double) = (false, false);
        let mut i = 0;
        while i < p.len() {
            let c = p[i];
            if !single && !double && matches!(c, b' ' | b'\t' | b';' | b'\n') {
                break;
            }
            if !double && c == b'\'' {
                single = !single;
                i += 1;
                continue;
            } else if !single && c == b'\\' {
                i += 1;
                match p.get(i) {
                    None => return Err(ParseError::Dangling),
                    Some(b'\n') => {
                        i += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            } else if !single && c == b'"' {
                double = !double;
                i += 1;
                continue;
            }
            out.push(p[i]);
            i += 1;
        }
        if double {
            return Err(ParseError::MissingQuote);
        }
        self.rest = &p[i..];
        Ok(Token::Arg(String::from_utf8_lossy(&out).into_owned()))
    }
}

/// Parses separate command-line words (`virtnet net-info default`).
pub fn parse_argv(set: &dyn CommandSet, args: &[String]) -> Result<Vec<ParsedCmd>, ParseError> {
    parse(set, &mut ArgvTokens { args: args.iter() })
}

/// Parses one command string (`virtnet 'net-info default; net-list'`).
pub fn parse_string(set: &dyn CommandSet, line: &str) -> Result<Vec<ParsedCmd>, ParseError> {
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    parse(
        set,
        &mut StringTokens {
            rest: line.as_bytes(),
        },
    )
}

fn is_option_word(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() > 2 && b[0] == b'-' && b[1] == b'-' && b[2].is_ascii_alphanumeric()
}

fn parse(set: &dyn CommandSet, tokens: &mut dyn Tokens) -> Result<Vec<ParsedCmd>, ParseError> {
    let mut cmds = Vec::new();
    loop {
        let mut def: Option<&'static CmdDef> = None;
        let mut given: Vec<GivenOpt> = Vec::new();
        let mut seen = vec![false; 0];
        let mut need_arg: Vec<usize> = Vec::new();
        let mut data_only = false;
        let mut help_given = false;
        let last = loop {
            let tk = tokens.next_token()?;
            let word = match tk {
                Token::Arg(w) => w,
                other => break other,
            };
            let Some(cmd) = def else {
                if word.starts_with('#') {
                    // A comment runs to the end of the command.
                    let end = loop {
                        match tokens.next_token()? {
                            Token::Arg(_) => continue,
                            other => break other,
                        }
                    };
                    break end;
                }
                let found = set
                    .find(&word)
                    .ok_or_else(|| ParseError::UnknownCommand(word.clone()))?;
                def = Some(found);
                seen = vec![false; found.opts.len()];
                need_arg = found
                    .opts
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.positional())
                    .map(|(i, _)| i)
                    .collect();
                continue;
            };
            let is_help_cmd = cmd.name == "help";
            if !data_only && is_option_word(&word) {
                let body = &word[2..];
                let (mut name, mut inline) = match body.split_once('=') {
                    Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                    None => (body.to_owned(), None),
                };
                if name == "help" {
                    if inline.is_some() {
                        return Err(ParseError::InvalidEquals("help".into()));
                    }
                    help_given = true;
                    continue;
                }
                // Resolve aliases ("name" or "name=value").
                let mut found = cmd.opt(&name);
                if let Some((_, o)) = found {
                    if let OptKind::Alias(target) = o.kind {
                        let (tname, tval) = match target.split_once('=') {
                            Some((n, v)) => (n, Some(v)),
                            None => (target, None),
                        };
                        if let Some(v) = tval {
                            if inline.is_some() {
                                return Err(ParseError::InvalidEquals(o.name.into()));
                            }
                            inline = Some(v.to_owned());
                        }
                        name = tname.to_owned();
                        found = cmd.opt(&name);
                    }
                }
                let Some((idx, opt)) = found else {
                    if is_help_cmd {
                        continue;
                    }
                    return Err(ParseError::UnknownOption {
                        cmd: cmd.name.into(),
                        opt: name,
                    });
                };
                if seen[idx] && opt.kind != OptKind::Argv {
                    return Err(ParseError::AlreadySeen(name));
                }
                seen[idx] = true;
                if opt.takes_value() {
                    let value = match inline {
                        Some(v) => v,
                        None => match tokens.next_token()? {
                            Token::Arg(v) => v,
                            _ => {
                                return Err(ParseError::ExpectedValue {
                                    opt: opt.name.into(),
                                    what: if opt.kind == OptKind::Int {
                                        "number"
                                    } else {
                                        "string"
                                    },
                                });
                            }
                        },
                    };
                    if opt.kind != OptKind::Argv {
                        need_arg.retain(|&i| i != idx);
                    }
                    given.push(GivenOpt {
                        name: opt.name,
                        kind: opt.kind,
                        value: Some(value),
                    });
                } else {
                    if inline.is_some() {
                        return Err(ParseError::InvalidEquals(opt.name.into()));
                    }
                    given.push(GivenOpt {
                        name: opt.name,
                        kind: opt.kind,
                        value: None,
                    });
                }
            } else if !data_only && word == "--" {
                data_only = true;
            } else {
                match need_arg.first().copied() {
                    Some(idx) => {
                        let opt = &cmd.opts[idx];
                        if opt.kind != OptKind::Argv {
                            need_arg.remove(0);
                        }
                        seen[idx] = true;
                        given.push(GivenOpt {
                            name: opt.name,
                            kind: opt.kind,
                            value: Some(word),
                        });
                    }
                    None if is_help_cmd => {}
                    None => return Err(ParseError::UnexpectedData(word)),
                }
            }
        };
        if let Some(cmd) = def {
            if help_given {
                let help = set
                    .find("help")
                    .ok_or_else(|| ParseError::UnknownCommand("help".into()))?;
                cmds.push(ParsedCmd {
                    def: help,
                    opts: vec![GivenOpt {
                        name: "command",
                        kind: OptKind::String,
                        value: Some(cmd.name.to_owned()),
                    }],
                });
            } else {
                let missing: Vec<(String, bool)> = cmd
                    .opts
                    .iter()
                    .enumerate()
                    .filter(|(i, o)| o.required && !seen[*i])
                    .map(|(_, o)| {
                        (
                            o.name.to_owned(),
                            matches!(o.kind, OptKind::Data | OptKind::Argv),
                        )
                    })
                    .collect();
                if !missing.is_empty() {
                    return Err(ParseError::MissingRequired {
                        cmd: cmd.name.into(),
                        missing,
                    });
                }
                cmds.push(ParsedCmd {
                    def: cmd,
                    opts: given,
                });
            }
        }
        if last == Token::End {
            break;
        }
    }
    Ok(cmds)
}

impl fmt::Display for ParsedCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.def.name)?;
        for o in &self.opts {
            match &o.value {
                Some(v) => write!(f, " --{} {v}", o.name)?,
                None => write!(f, " --{}", o.name)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn argv(words: &[&str]) -> Result<Vec<ParsedCmd>, ParseError> {
        let v: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        parse_argv(&Registry, &v)
    }

    fn one(words: &[&str]) -> ParsedCmd {
        let mut cmds = argv(words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
        assert_eq!(cmds.len(), 1);
        cmds.remove(0)
    }

    fn err(words: &[&str]) -> String {
        argv(words).unwrap_err().to_string()
    }

    #[test]
    fn positional_and_named_values() {
        let c = one(&[
            "net-update",
            "n",
            "add",
            "ip-dhcp-host",
            "<host/>",
            "--live",
        ]);
        assert_eq!(c.value("network"), Some("n"));
        assert_eq!(c.value("command"), Some("add"));
        assert_eq!(c.value("section"), Some("ip-dhcp-host"));
        assert_eq!(c.value("xml"), Some("<host/>"));
        assert!(c.has("live") && !c.has("config"));
        let c = one(&[
            "net-update",
            "--xml=<x/>",
            "--network",
            "n",
            "modify",
            "dns-host",
        ]);
        assert_eq!(c.value("network"), Some("n"));
        assert_eq!(c.value("command"), Some("modify"));
        assert_eq!(c.value("section"), Some("dns-host"));
        assert_eq!(c.value("xml"), Some("<x/>"));
        // An Int option fills a position too, after the data options.
        let c = one(&["net-update", "n", "add", "ip", "<ip/>", "3"]);
        assert_eq!(c.value("parent-index"), Some("3"));
        // net-event's options are optional strings, still positional.
        let c = one(&["net-event", "default", "lifecycle"]);
        assert_eq!(c.value("network"), Some("default"));
        assert_eq!(c.value("event"), Some("lifecycle"));
        // --xpath is named-only.
        assert_eq!(err(&["net-dumpxml", "n", "//ip"]), "unexpected data '//ip'");
        let c = one(&["net-dumpxml", "n", "--xpath", "//ip"]);
        assert_eq!(c.value("xpath"), Some("//ip"));
    }

    #[test]
    fn double_dash_and_dashes() {
        let c = one(&["net-info", "--", "--weird"]);
        assert_eq!(c.value("network"), Some("--weird"));
        let c = one(&["net-info", "-x"]);
        assert_eq!(c.value("network"), Some("-x"));
        let c = one(&["net-info", "-"]);
        assert_eq!(c.value("network"), Some("-"));
        assert_eq!(err(&["net-list", "--", "--all"]), "unexpected data '--all'");
        let c = one(&["net-desc", "n", "a", "--title", "b", "c"]);
        assert_eq!(c.values("new-desc"), vec!["a", "b", "c"]);
        assert!(c.has("title"));
    }

    #[test]
    fn every_error_message() {
        assert_eq!(err(&["bogus-cmd"]), "unknown command: 'bogus-cmd'");
        assert_eq!(
            err(&["net-list", "--bogus"]),
            "command 'net-list' doesn't support option --bogus"
        );
        assert_eq!(
            err(&["net-list", "--all", "--all"]),
            "option --all already seen"
        );
        assert_eq!(
            err(&["net-info", "a", "--network", "b"]),
            "option --network already seen"
        );
        assert_eq!(
            err(&["net-dumpxml", "--network"]),
            "expected syntax: --network <string>"
        );
        assert_eq!(
            err(&["net-update", "n", "add", "ip", "x", "--parent-index"]),
            "expected syntax: --parent-index <number>"
        );
        assert_eq!(
            err(&["net-list", "--all=1"]),
            "invalid '=' after option --all"
        );
        assert_eq!(
            err(&["net-list", "--help=1"]),
            "invalid '=' after option --help"
        );
        assert_eq!(err(&["net-dumpxml", "a", "b"]), "unexpected data 'b'");
        assert_eq!(
            err(&["net-info"]),
            "command 'net-info' requires <network> option"
        );
        assert_eq!(
            argv(&["net-update", "a", "b"]).unwrap_err().lines(),
            vec![
                "command 'net-update' requires <section> option".to_owned(),
                "command 'net-update' requires <xml> option".to_owned(),
            ]
        );
        assert_eq!(
            parse_string(&Registry, "net-info 'a")
                .map(|c| c[0].value("network").map(str::to_owned)),
            Ok(Some("a".into()))
        );
        assert_eq!(
            parse_string(&Registry, "net-info \"a")
                .unwrap_err()
                .to_string(),
            "missing \""
        );
        assert_eq!(
            parse_string(&Registry, "net-info a\\")
                .unwrap_err()
                .to_string(),
            "dangling \\"
        );
        assert_eq!(parse_string(&Registry, "").unwrap_err(), ParseError::Empty);
        assert!(ParseError::Empty.lines().is_empty());
    }

    #[test]
    fn help_replaces_the_command() {
        let c = one(&["net-list", "--all", "--help"]);
        assert_eq!(c.name(), "help");
        assert_eq!(c.value("command"), Some("net-list"));
        // Missing required options do not matter with --help.
        let c = one(&["net-info", "--help"]);
        assert_eq!(c.value("command"), Some("net-info"));
        // help itself ignores unknown options and extra words.
        let c = one(&["help", "net-info", "--bogus", "extra"]);
        assert_eq!(c.value("command"), Some("net-info"));
    }

    #[test]
    fn command_strings() {
        let cmds = parse_string(
            &Registry,
            "net-list --all; net-info \"a b\"\nnet-uuid 'c d' # note",
        )
        .unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[1].value("network"), Some("a b"));
        assert_eq!(cmds[2].value("network"), Some("c d"));
        let cmds = parse_string(&Registry, "# only a comment").unwrap();
        assert!(cmds.is_empty());
        let cmds = parse_string(&Registry, "net-info a\\ b").unwrap();
        assert_eq!(cmds[0].value("network"), Some("a b"));
        assert_eq!(
            parse_string(&Registry, "net-info a; net-bogus")
                .unwrap_err()
                .to_string(),
            "unknown command: 'net-bogus'"
        );
        // Separate words never split at ';'.
        assert_eq!(
            err(&["net-info", "a", ";", "net-list"]),
            "unexpected data ';'"
        );
    }
}
