//! Command and option definitions in virsh's model.
//!
//! Every command declares its options in order. The order matters: options
//! that take a value and are not `--name`-only ([`OptDef::positional`]) are
//! filled, in declaration order, by bare words on the command line, exactly
//! as virsh's `vshCommandParse` does.

/// What kind of value an option takes (virsh's `vshCmdOptType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// A flag: `--inactive`.
    Bool,
    /// A string, given as `--name value` (or positionally unless
    /// [`OptDef::named_only`]).
    String,
    /// An integer, given like a string and converted when used.
    Int,
    /// A required positional string (`<network>`), also accepted as
    /// `--network value`.
    Data,
    /// Every remaining word (`[--new-desc] <string>...`); must come last.
    Argv,
    /// Another spelling of the named option (hidden from help).
    Alias(&'static str),
}

/// One option of a command.
#[derive(Debug, Clone, Copy)]
pub struct OptDef {
    /// Name without dashes.
    pub name: &'static str,
    /// Kind of value.
    pub kind: OptKind,
    /// Must be present (`VSH_OFLAG_REQ`).
    pub required: bool,
    /// Only accepted as `--name value`, never positionally
    /// (`VSH_OFLAG_REQ_OPT`).
    pub named_only: bool,
    /// An empty value is accepted (`VSH_OFLAG_EMPTY_OK`).
    pub empty_ok: bool,
    /// One-line help.
    pub help: &'static str,
}

impl OptDef {
    /// A flag.
    pub const fn flag(name: &'static str, help: &'static str) -> Self {
        Self::new(name, OptKind::Bool, help)
    }

    /// A required positional string (`<name>`).
    pub const fn data(name: &'static str, help: &'static str) -> Self {
        let mut o = Self::new(name, OptKind::Data, help);
        o.required = true;
        o
    }

    /// An optional string, positional too.
    pub const fn string(name: &'static str, help: &'static str) -> Self {
        Self::new(name, OptKind::String, help)
    }

    /// An optional integer, positional too.
    pub const fn int(name: &'static str, help: &'static str) -> Self {
        Self::new(name, OptKind::Int, help)
    }

    /// The remaining words.
    pub const fn argv(name: &'static str, help: &'static str) -> Self {
        Self::new(name, OptKind::Argv, help)
    }

    const fn new(name: &'static str, kind: OptKind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            required: false,
            named_only: false,
            empty_ok: false,
            help,
        }
    }

    /// The same option, accepted only as `--name value`.
    pub const fn only_named(mut self) -> Self {
        self.named_only = true;
        self
    }

    /// The same option, allowing an empty value.
    pub const fn allow_empty(mut self) -> Self {
        self.empty_ok = true;
        self
    }

    /// True when bare words can fill this option.
    pub fn positional(&self) -> bool {
        !matches!(self.kind, OptKind::Bool | OptKind::Alias(_)) && !self.named_only
    }

    /// True when the option takes a value.
    pub fn takes_value(&self) -> bool {
        !matches!(self.kind, OptKind::Bool | OptKind::Alias(_))
    }
}

/// Commands that never open a connection (`VSH_CMD_FLAG_NOCONNECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// The command needs the connection.
    Needed,
    /// The command runs without one (help, net-lint).
    Never,
    /// The command opens what it needs itself (doctor, tunnel, the bridge
    /// helper): even `-c URI` is not opened for it beforehand.
    Own,
}

/// A command: name, help texts, options, and what runs it.
#[derive(Debug, Clone, Copy)]
pub struct CmdDef {
    /// The command word.
    pub name: &'static str,
    /// One-line help (the group listing and NAME line).
    pub help: &'static str,
    /// Longer description; empty for none.
    pub desc: &'static str,
    /// Options, in declaration order.
    pub opts: &'static [OptDef],
    /// Whether a connection is needed.
    pub connect: Connect,
    /// Hidden from help listings (commands kept for a later release).
    pub hidden: bool,
    /// Followed by an empty line, as every virsh command is; off for
    /// commands whose output is a file's contents (`net-lint`).
    pub blank_line: bool,
}

impl CmdDef {
    /// Looks an option up by exact name.
    pub fn opt(&self, name: &str) -> Option<(usize, &'static OptDef)> {
        self.opts.iter().enumerate().find(|(_, o)| o.name == name)
    }
}

/// A group of commands, as `help` lists them.
#[derive(Debug, Clone, Copy)]
pub struct CmdGroup {
    /// Title (`Networking`).
    pub name: &'static str,
    /// Keyword for `help <keyword>` (`network`).
    pub keyword: &'static str,
    /// Commands, in listing order.
    pub commands: &'static [CmdDef],
}
