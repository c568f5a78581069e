//! Errors raised while generating dnsmasq files.
//!
//! Messages follow libvirt's wording where libvirt has one
//! (`unsupported configuration: …`, `internal error: …`); values that
//! cannot be written safely are named together with the network and the
//! element they came from.

use std::fmt;

use virtnet_conf::{ErrorDomain, ErrorKind};

/// Why a value cannot be written into a dnsmasq file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnsafeReason {
    /// A line feed or carriage return: dnsmasq would read what follows as a
    /// new option (or a new hosts line).
    LineBreak,
    /// Another control character (NUL, tab, escape, DEL, …).
    ControlCharacter,
    /// A comma where the value fills one comma-separated field: dnsmasq
    /// would read what follows as further fields of the option.
    Comma,
    /// A `/` in a domain that dnsmasq delimits with slashes.
    Slash,
    /// Whitespace in a name of a hosts file, where whitespace separates names.
    Whitespace,
    /// A `#` that dnsmasq would take as the start of a comment.
    Comment,
    /// An unbalanced `"`: dnsmasq refuses the whole file ("missing \"").
    UnbalancedQuote,
    /// An empty value where dnsmasq needs one.
    Empty,
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeReason::LineBreak => "it contains a line break",
            UnsafeReason::ControlCharacter => "it contains a control character",
            UnsafeReason::Comma => "it contains a comma, which separates dnsmasq option fields",
            UnsafeReason::Slash => "it contains a '/', which delimits dnsmasq domains",
            UnsafeReason::Whitespace => "it contains whitespace, which separates host names",
            UnsafeReason::Comment => "it contains a '#' that dnsmasq reads as a comment",
            UnsafeReason::UnbalancedQuote => "it contains an unbalanced '\"'",
            UnsafeReason::Empty => "it is empty",
        })
    }
}

/// An error from generating dnsmasq files for a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value of the definition would inject or corrupt lines or options of
    /// a dnsmasq file, so nothing is written.
    #[error("{}", unsafe_message(network, element, value, *reason))]
    UnsafeValue {
        /// The network's name.
        network: String,
        /// Which element or attribute the value came from.
        element: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: UnsafeReason,
    },
    /// libvirt's `VIR_ERR_CONFIG_UNSUPPORTED` cases (the message is libvirt's).
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// libvirt's `VIR_ERR_INTERNAL_ERROR` cases (the message is libvirt's).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// libvirt's error number for this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnsafeValue { .. } | Error::Unsupported(_) => ErrorKind::ConfigUnsupported,
            Error::Internal(_) => ErrorKind::InternalError,
        }
    }

    /// The message without libvirt's kind prefix.
    pub fn detail(&self) -> String {
        let full = self.to_string();
        let prefix = match self.kind() {
            ErrorKind::InternalError => "internal error: ",
            _ => "unsupported configuration: ",
        };
        full.strip_prefix(prefix).unwrap_or(&full).to_string()
    }
}

impl From<Error> for virtnet_conf::Error {
    fn from(e: Error) -> virtnet_conf::Error {
        virtnet_conf::Error::new(e.kind(), ErrorDomain::Network, e.detail())
    }
}

fn unsafe_message(network: &str, element: &str, value: &str, reason: UnsafeReason) -> String {
    let of_network = if element == "network name" {
        String::new()
    } else {
        format!(" of network '{}'", Shown(network))
    };
    format!(
        "unsupported configuration: {element} '{}'{of_network} cannot be written to the dnsmasq configuration: {reason}",
        Shown(value)
    )
}

/// Shows a value in a one-line message: control characters are escaped
/// (`\n`, `\u{1b}`), everything else is printed as is.
pub(crate) struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_value_message_is_one_line() {
        let e = Error::UnsafeValue {
            network: "net".into(),
            element: "DNS TXT record value",
            value: "a\nport=0".into(),
            reason: UnsafeReason::LineBreak,
        };
        assert_eq!(
            e.to_string(),
            "unsupported configuration: DNS TXT record value 'a\\nport=0' of network 'net' \
             cannot be written to the dnsmasq configuration: it contains a line break"
        );
        assert_eq!(e.kind(), ErrorKind::ConfigUnsupported);
        let c: virtnet_conf::Error = e.into();
        assert_eq!(c.kind(), ErrorKind::ConfigUnsupported);
        assert!(
            c.to_string()
                .starts_with("unsupported configuration: DNS TXT")
        );
    }

    #[test]
    fn network_name_is_not_repeated() {
        let e = Error::UnsafeValue {
            network: "a\rb".into(),
            element: "network name",
            value: "a\rb".into(),
            reason: UnsafeReason::LineBreak,
        };
        assert_eq!(
            e.to_string(),
            "unsupported configuration: network name 'a\\rb' cannot be written to the \
             dnsmasq configuration: it contains a line break"
        );
    }

    #[test]
    fn internal_prefix() {
        let e = Error::Internal("bridge 'x' has an invalid prefix".into());
        assert_eq!(
            e.to_string(),
            "internal error: bridge 'x' has an invalid prefix"
        );
        assert_eq!(e.detail(), "bridge 'x' has an invalid prefix");
    }
}
