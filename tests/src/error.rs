//! The harness's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while setting up or driving a scenario.
///
/// [`Error::Unavailable`] is special: it means the environment cannot run the
/// scenario at all (not root, a tool is missing, the guest kernel is not
/// cached). Tests turn it into a printed skip with [`or_skip!`](crate::or_skip);
/// every other variant is a real failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario cannot run here; the message says why.
    #[error("{0}")]
    Unavailable(String),

    /// A program could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why `exec` failed.
        source: std::io::Error,
    },

    /// A program did not finish within its time limit and was killed.
    #[error(
        "`{cmd}` did not finish within {after:?} and was killed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    )]
    Timeout {
        /// The command line.
        cmd: String,
        /// The time limit.
        after: Duration,
        /// What it printed on stdout until then.
        stdout: String,
        /// What it printed on stderr until then.
        stderr: String,
    },

    /// A program exited unsuccessfully.
    #[error("`{cmd}` failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// Something awaited did not happen in time.
    #[error("timed out after {after:?} waiting for {what}\n{context}")]
    WaitTimeout {
        /// What was awaited.
        what: String,
        /// The time limit.
        after: Duration,
        /// Output or log that helps understand why.
        context: String,
    },

    /// A file-system or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or address.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A tool's output or a network answer could not be understood.
    #[error("cannot understand {what}: {detail}")]
    Parse {
        /// What was being read.
        what: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A process the harness manages ended when it should still be running.
    #[error("{what} exited unexpectedly ({status}); log: {}\n{log}", log_path.display())]
    Exited {
        /// Which process.
        what: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// Where its full output is.
        log_path: PathBuf,
        /// The end of its output.
        log: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] naming what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Builds an [`Error::Parse`].
    pub fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// Whether this error means "cannot run here" rather than "failed".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
