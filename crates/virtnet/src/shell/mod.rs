//! The shell: output, error reporting and the command loop, as virsh does
//! them.
//!
//! virsh prints two kinds of errors. A command prints its own (`failed to
//! get network 'x'`) at once; the error the library raised last (`Network
//! not found: …`) is kept and printed when the command fails, after the
//! command's own. Every command is followed by an empty line on stdout
//! (not in quiet mode); errors go to stderr as `error: …`.

pub mod global;
pub mod help;
pub mod opts;
pub mod parse;

use std::io::{BufRead, Write};
use std::time::Instant;

use crate::commands;
use crate::conn::Connection;
use crate::registry::Registry;
use crate::table::{Table, locale_is_utf8};
use crate::uri::{DEFAULT_URI, DEFAULT_URI_ENV};
use global::{GlobalAction, GlobalOptions};
use opts::Connect;
use parse::{CommandSet, ParsedCmd};

/// A command failed; its messages were printed or kept in
/// [`Ctl::last_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

/// What a command returns.
pub type CmdResult = Result<(), Failed>;

/// The shell's state: output streams, flags, the connection and the last
/// library error.
pub struct Ctl<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// `-q`: no headers, no informational messages.
    pub quiet: bool,
    /// `-r`: open the connection read-only.
    pub readonly: bool,
    /// `-t`: print how long each command took.
    pub timing: bool,
    /// The URI to connect to (`-c`, or the environment's default).
    pub uri: String,
    /// Keepalive interval and count (`-k`, `-K`).
    pub keepalive: (Option<u32>, Option<u32>),
    /// The open connection, once opened.
    pub conn: Option<Connection>,
    /// The error the library raised last, not yet reported.
    pub last_error: Option<String>,
    /// The locale's character set is UTF-8 (affects table widths).
    pub utf8: bool,
    /// Set when a connection failed because the daemon went away.
    pub disconnected: bool,
}

impl<'a> Ctl<'a> {
    /// A shell writing to `out` and `err`.
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Self {
            out,
            err,
            quiet: false,
            readonly: false,
            timing: false,
            uri: DEFAULT_URI.to_owned(),
            keepalive: (None, None),
            conn: None,
            last_error: None,
            utf8: locale_is_utf8(),
            disconnected: false,
        }
    }

    /// Prints to stdout.
    pub fn print(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
    }

    /// Prints to stderr as it is.
    pub fn eprint(&mut self, s: &str) {
        let _ = self.out.flush();
        let _ = self.err.write_all(s.as_bytes());
        let _ = self.err.flush();
    }

    /// Prints to stdout unless quiet (virsh's `vshPrintExtra`).
    pub fn print_extra(&mut self, s: &str) {
        if !self.quiet {
            self.print(s);
        }
    }

    /// Prints `error: msg` and a newline to stderr (also after a message
    /// that ends with one, as virsh 9.0 does).
    pub fn error(&mut self, msg: &str) {
        let _ = self.out.flush();
        let mut line = String::with_capacity(msg.len() + 8);
        line.push_str("error: ");
        line.push_str(msg);
        line.push('\n');
        let _ = self.err.write_all(line.as_bytes());
        let _ = self.err.flush();
    }

    /// Keeps a library error, to be reported if the command fails.
    pub fn set_error(&mut self, msg: impl Into<String>) {
        self.last_error = Some(msg.into());
    }

    /// Prints the kept library error, if any, and forgets it.
    pub fn report_error(&mut self) {
        if let Some(e) = self.last_error.take() {
            self.error(&e);
        }
    }

    /// Prints a table; quiet mode leaves the header out.
    pub fn print_table(&mut self, table: &Table) {
        let s = table.render(!self.quiet, self.utf8);
        self.print(&s);
    }

    /// Flushes both streams.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    /// Opens the connection if there is none (virsh's connection handler):
    /// on failure prints `failed to connect to the hypervisor` and keeps
    /// the reason.
    pub fn ensure_connected(&mut self) -> CmdResult {
        if self.conn.is_some() && !self.disconnected {
            return Ok(());
        }
        let was_disconnected = self.disconnected;
        if let Some(c) = self.conn.take() {
            c.close();
        }
        match Connection::open(&self.uri, self.readonly, self.keepalive) {
            Ok(c) => {
                self.conn = Some(c);
                self.disconnected = false;
                Ok(())
            }
            Err(e) => {
                self.error(if was_disconnected {
                    "Failed to reconnect to the hypervisor"
                } else {
                    "failed to connect to the hypervisor"
                });
                self.set_error(e.to_string());
                Err(Failed)
            }
        }
    }

    /// Runs parsed commands the way `vshCommandRun` does; true when the
    /// last one succeeded.
    pub fn run_commands(&mut self, cmds: &[ParsedCmd]) -> bool {
        let mut ok = true;
        for cmd in cmds {
            let start = Instant::now();
            let res = if matches!(cmd.def.connect, Connect::Never | Connect::Own) {
                commands::dispatch(self, cmd)
            } else {
                self.ensure_connected()
                    .and_then(|()| commands::dispatch(self, cmd))
            };
            ok = res.is_ok();
            if let Some(conn) = &self.conn {
                if !conn.is_alive() {
                    self.disconnected = true;
                }
            }
            if !ok {
                self.report_error();
            }
            if matches!(cmd.name(), "quit" | "exit") {
                return ok;
            }
            if self.timing {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                self.print(&format!("\n(Time: {ms:.3} ms)\n\n"));
            } else if cmd.def.blank_line {
                self.print_extra("\n");
            }
        }
        ok
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}

/// The environment virtnet reads.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `VIRTNET_DEFAULT_URI`.
    pub default_uri: Option<String>,
    /// Standard input is a terminal.
    pub stdin_tty: bool,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self {
            default_uri: std::env::var(DEFAULT_URI_ENV)
                .ok()
                .filter(|s| !s.is_empty()),
            stdin_tty: crate::term::stdin_is_tty(),
        }
    }
}

/// Runs virtnet with `args` (without the program name); returns the exit
/// status.
pub fn run(
    progname: &str,
    args: &[String],
    env: &Env,
    out: &mut dyn Write,
    err: &mut dyn Write,
    input: &mut dyn BufRead,
) -> i32 {
    let mut ctl = Ctl::new(out, err);
    let opts = match global::parse(args) {
        Ok(GlobalAction::Run(o)) => o,
        Ok(GlobalAction::Print(text)) => {
            ctl.print(&text);
            ctl.flush();
            return 0;
        }
        Ok(GlobalAction::Usage) => {
            let text = help::usage(progname, crate::registry::GROUPS);
            ctl.print(&text);
            ctl.flush();
            return 0;
        }
        Err(e) => {
            for msg in e.lines() {
                ctl.error(&msg);
            }
            ctl.flush();
            return 1;
        }
    };
    let status = run_with(&mut ctl, &opts, env, input);
    ctl.close();
    ctl.flush();
    status
}

fn run_with(ctl: &mut Ctl<'_>, opts: &GlobalOptions, env: &Env, input: &mut dyn BufRead) -> i32 {
    for w in &opts.warnings {
        ctl.error(w);
    }
    ctl.quiet = opts.quiet;
    ctl.readonly = opts.readonly;
    ctl.timing = opts.timing;
    ctl.keepalive = (opts.keepalive_interval, opts.keepalive_count);
    let registry = Registry;
    let parsed = match opts.command.len() {
        0 => None,
        1 => Some(parse::parse_string(&registry, &opts.command[0])),
        _ => Some(parse::parse_argv(&registry, &opts.command)),
    };
    let cmds = match parsed {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            for msg in e.lines() {
                ctl.error(&msg);
            }
            return 1;
        }
        None => None,
    };
    if let Some(uri) = &opts.connect {
        ctl.uri = uri.clone();
        // A named connection must open before anything runs, unless every
        // command opens its own.
        let own = cmds
            .as_ref()
            .is_some_and(|c| c.iter().all(|c| c.def.connect == Connect::Own));
        if !own && ctl.ensure_connected().is_err() {
            ctl.report_error();
            return 1;
        }
    } else if let Some(uri) = &env.default_uri {
        ctl.uri = uri.clone();
    }
    match cmds {
        Some(cmds) => {
            if ctl.run_commands(&cmds) {
                0
            } else {
                1
            }
        }
        None => interactive(ctl, &registry, input),
    }
}

fn interactive(ctl: &mut Ctl<'_>, registry: &Registry, input: &mut dyn BufRead) -> i32 {
    if !ctl.quiet {
        ctl.print(
            "Welcome to virtnet, the virtual network interactive terminal.\n\n\
             Type:  'help' for help with commands\n       'quit' to quit\n\n",
        );
    }
    let prompt = if ctl.readonly {
        "virtnet > "
    } else {
        "virtnet # "
    };
    // Bounded only by the input: each line is one command string.
    loop {
        ctl.print(prompt);
        ctl.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                ctl.print("\n");
                return 0;
            }
            Ok(_) => {}
        }
        let line = line.trim_end_matches('\n');
        if line.is_empty() {
            continue;
        }
        match parse::parse_string(registry, line) {
            Ok(cmds) => {
                let quit = cmds.iter().any(|c| matches!(c.name(), "quit" | "exit"));
                ctl.run_commands(&cmds);
                if quit {
                    return 0;
                }
            }
            Err(e) => {
                for msg in e.lines() {
                    ctl.error(&msg);
                }
            }
        }
    }
}

/// Looks a command up (for `help`).
pub fn find_command(name: &str) -> Option<&'static opts::CmdDef> {
    Registry.find(name)
}
