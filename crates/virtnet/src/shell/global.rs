//! virtnet's own options, before the command: `-c URI`, `-r`, `-q` and the
//! rest of virsh's, parsed like virsh's `getopt_long` loop (options stop at
//! the first word that is not one; short options bundle; long options may
//! be abbreviated).

/// Options that apply to the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalOptions {
    /// `-c URI`.
    pub connect: Option<String>,
    /// `-q`.
    pub quiet: bool,
    /// `-r`.
    pub readonly: bool,
    /// `-t`.
    pub timing: bool,
    /// `-k N`.
    pub keepalive_interval: Option<u32>,
    /// `-K N`.
    pub keepalive_count: Option<u32>,
    /// `-d N` (accepted; virtnet has one debug level).
    pub debug: Option<i32>,
    /// Non-fatal messages to print before running.
    pub warnings: Vec<String>,
    /// The command words.
    pub command: Vec<String>,
}

/// What the options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalAction {
    /// Run commands (or the interactive shell).
    Run(GlobalOptions),
    /// Print this and exit 0 (`-v`, `-V`).
    Print(String),
    /// Print the usage and exit 0 (`-h`).
    Usage,
}

/// A fatal option error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GlobalError(pub String);

impl GlobalError {
    /// The error lines.
    pub fn lines(&self) -> Vec<String> {
        vec![self.0.clone()]
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

const LONG: &[(&str, Arg, char)] = &[
    ("connect", Arg::Required, 'c'),
    ("debug", Arg::Required, 'd'),
    ("escape", Arg::Required, 'e'),
    ("help", Arg::None, 'h'),
    ("keepalive-interval", Arg::Required, 'k'),
    ("keepalive-count", Arg::Required, 'K'),
    ("log", Arg::Required, 'l'),
    ("quiet", Arg::None, 'q'),
    ("readonly", Arg::None, 'r'),
    ("timing", Arg::None, 't'),
    ("version", Arg::Optional, 'v'),
];

fn short_arg(c: char) -> Option<Arg> {
    match c {
        'c' | 'd' | 'e' | 'k' | 'K' | 'l' => Some(Arg::Required),
        'h' | 'q' | 'r' | 't' | 'v' | 'V' => Some(Arg::None),
        _ => None,
    }
}

fn long_name(c: char) -> Option<&'static str> {
    LONG.iter().find(|(_, _, v)| *v == c).map(|(n, _, _)| *n)
}

/// The version virtnet reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses the options in front of the command.
pub fn parse(args: &[String]) -> Result<GlobalAction, GlobalError> {
    let mut o = GlobalOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            i += 1;
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let exact = LONG.iter().find(|(n, _, _)| *n == name);
            let matches: Vec<_> = LONG
                .iter()
                .filter(|(n, _, _)| n.starts_with(name))
                .collect();
            let (lname, kind, val) = match (exact, matches.as_slice()) {
                (Some(e), _) => *e,
                (None, [one]) => **one,
                _ => {
                    return Err(GlobalError(format!(
                        "unsupported option '{a}'. See --help."
                    )));
                }
            };
            let value = match kind {
                Arg::None => {
                    if inline.is_some() {
                        return Err(GlobalError(format!(
                            "unsupported option '-{val}'. See --help."
                        )));
                    }
                    None
                }
                Arg::Optional => inline,
                Arg::Required => match inline {
                    Some(v) => Some(v),
                    None if i < args.len() => {
                        i += 1;
                        Some(args[i - 1].clone())
                    }
                    None => {
                        return Err(GlobalError(format!(
                            "option '-{val}'/'--{lname}' requires an argument"
                        )));
                    }
                },
            };
            if let Some(action) = apply(&mut o, val, value, true)? {
                return Ok(action);
            }
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            i += 1;
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(kind) = short_arg(c) else {
                    return Err(GlobalError(format!(
                        "unsupported option '-{c}'. See --help."
                    )));
                };
                let value = if kind == Arg::Required {
                    if j < chars.len() {
                        let v: String = chars[j..].iter().collect();
                        j = chars.len();
                        Some(v)
                    } else if i < args.len() {
                        i += 1;
                        Some(args[i - 1].clone())
                    } else {
                        return Err(GlobalError(match long_name(c) {
                            Some(l) => format!("option '-{c}'/'--{l}' requires an argument"),
                            None => format!("option '-{c}' requires an argument"),
                        }));
                    }
                } else {
                    None
                };
                if let Some(action) = apply(&mut o, c, value, false)? {
                    return Ok(action);
                }
            }
            continue;
        }
        break;
    }
    o.command = args[i..].to_vec();
    Ok(GlobalAction::Run(o))
}

/// `virStrToLong_i`: optional leading whitespace and sign, digits in
/// `radix` (0: C prefixes), nothing after.
pub fn parse_c_int(s: &str, radix: u32) -> Option<i64> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if radix == 0 {
        if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            (16, h)
        } else if t.len() > 1 && t.starts_with('0') {
            (8, &t[1..])
        } else {
            (10, t)
        }
    } else {
        (radix, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn apply(
    o: &mut GlobalOptions,
    c: char,
    value: Option<String>,
    long: bool,
) -> Result<Option<GlobalAction>, GlobalError> {
    let v = value.unwrap_or_default();
    match c {
        'c' => o.connect = Some(v),
        'd' => {
            let name = if long { "--debug" } else { "-d" };
            let Some(level) = parse_c_int(&v, 10).and_then(|l| i32::try_from(l).ok()) else {
                return Err(GlobalError(format!(
                    "option {name} takes a numeric argument"
                )));
            };
            if !(0..=4).contains(&level) {
                o.warnings
                    .push(format!("ignoring debug level {level} out of range [0-4]"));
            } else {
                o.debug = Some(level);
            }
        }
        'e' => {
            let b = v.as_bytes();
            let ok = (b.len() == 2
                && b[0] == b'^'
                && (b[1].is_ascii_lowercase() || (b'@'..=b'_').contains(&b[1])))
                || (b.len() == 1 && b[0] != b'^');
            if !ok {
                return Err(GlobalError(format!(
                    "Invalid string '{v}' for escape sequence"
                )));
            }
        }
        'h' => return Ok(Some(GlobalAction::Usage)),
        'k' | 'K' => {
            let name = match (c, long) {
                ('k', false) => "-k",
                ('k', true) => "--keepalive-interval",
                (_, false) => "-K",
                (_, true) => "--keepalive-count",
            };
            let Some(n) = parse_c_int(&v, 0).and_then(|l| i32::try_from(l).ok()) else {
                return Err(GlobalError(format!("Invalid value for option {name}")));
            };
            let Ok(n) = u32::try_from(n) else {
                return Err(GlobalError(format!(
                    "option {name} requires a positive integer argument"
                )));
            };
            if c == 'k' {
                o.keepalive_interval = Some(n);
            } else {
                o.keepalive_count = Some(n);
            }
        }
        'l' => {}
        'q' => o.quiet = true,
        'r' => o.readonly = true,
        't' => o.timing = true,
        'v' if v != "long" => return Ok(Some(GlobalAction::Print(format!("{VERSION}\n")))),
        'v' | 'V' => {
            return Ok(Some(GlobalAction::Print(format!(
                "virtnet command line tool {VERSION}\n\
                 virsh-compatible network commands for virtnetd and libvirt\n"
            ))));
        }
        _ => return Err(GlobalError("unknown option".into())),
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    fn run(s: &[&str]) -> GlobalOptions {
        match parse(&args(s)) {
            Ok(GlobalAction::Run(o)) => o,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    fn err(s: &[&str]) -> String {
        parse(&args(s)).unwrap_err().0
    }

    #[test]
    fn options_then_command() {
        let o = run(&["-c", "qemu:///system", "-rq", "net-list", "-r"]);
        assert_eq!(o.connect.as_deref(), Some("qemu:///system"));
        assert!(o.readonly && o.quiet);
        assert_eq!(o.command, args(&["net-list", "-r"]));
        let o = run(&["--connect=x", "--read", "--", "net-info", "--bogus"]);
        assert_eq!(o.connect.as_deref(), Some("x"));
        assert!(o.readonly);
        assert_eq!(o.command, args(&["net-info", "--bogus"]));
        let o = run(&["-cfoo", "-k", "0x10", "-K", "3"]);
        assert_eq!(o.connect.as_deref(), Some("foo"));
        assert_eq!(o.keepalive_interval, Some(16));
        assert_eq!(o.keepalive_count, Some(3));
        assert!(o.command.is_empty());
    }

    #[test]
    fn errors_like_virsh() {
        assert_eq!(err(&["-c"]), "option '-c'/'--connect' requires an argument");
        assert_eq!(
            err(&["--connect"]),
            "option '-c'/'--connect' requires an argument"
        );
        assert_eq!(
            err(&["--bogus"]),
            "unsupported option '--bogus'. See --help."
        );
        assert_eq!(err(&["-x"]), "unsupported option '-x'. See --help.");
        assert_eq!(err(&["--quiet=1"]), "unsupported option '-q'. See --help.");
        assert_eq!(err(&["--k", "1"]), "unsupported option '--k'. See --help.");
        assert_eq!(err(&["-d", "x"]), "option -d takes a numeric argument");
        assert_eq!(
            err(&["--debug=x"]),
            "option --debug takes a numeric argument"
        );
        assert_eq!(
            err(&["-k", "-1"]),
            "option -k requires a positive integer argument"
        );
        assert_eq!(err(&["-K", "z"]), "Invalid value for option -K");
        assert_eq!(
            err(&["-e", "^1"]),
            "Invalid string '^1' for escape sequence"
        );
        assert_eq!(
            run(&["-d", "9"]).warnings,
            vec!["ignoring debug level 9 out of range [0-4]".to_owned()]
        );
    }

    #[test]
    fn version_and_help() {
        assert_eq!(
            parse(&args(&["-v"])).unwrap(),
            GlobalAction::Print(format!("{VERSION}\n"))
        );
        assert!(matches!(
            parse(&args(&["--version=long"])).unwrap(),
            GlobalAction::Print(s) if s.starts_with("virtnet command line tool")
        ));
        assert_eq!(parse(&args(&["-h"])).unwrap(), GlobalAction::Usage);
    }

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_int(" 12", 10), Some(12));
        assert_eq!(parse_c_int("+3", 10), Some(3));
        assert_eq!(parse_c_int("-3", 10), Some(-3));
        assert_eq!(parse_c_int("3x", 10), None);
        assert_eq!(parse_c_int("", 10), None);
        assert_eq!(parse_c_int("010", 0), Some(8));
        assert_eq!(parse_c_int("0x1f", 0), Some(31));
    }
}
