//! Checks that a value can be written into a dnsmasq file without changing
//! what dnsmasq reads.
//!
//! dnsmasq reads its conf file and the dhcp hostsfile line by line: a line
//! break starts a new option, a `#` after whitespace starts a comment, `"`
//! quotes (and must be balanced), and most options split their value at
//! commas. The addnhosts file is split at whitespace. A value that would be
//! read differently from what the definition says is rejected, never
//! escaped into something else: libvirt writes these values verbatim, so
//! every value it would write correctly is written byte for byte the same.

use crate::error::{Error, Result, UnsafeReason};

/// What a value must not contain, by where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// dnsmasq's conf-file lexing applies (quotes, comments).
    lexed: bool,
    /// The value starts a line (a leading `#` makes the line a comment).
    line_start: bool,
    /// The value fills one comma-separated field.
    comma: bool,
    /// The value is a domain delimited by slashes.
    slash: bool,
    /// The value is a name in a whitespace-separated hosts file.
    hosts_name: bool,
}

impl Rules {
    /// Only line breaks and control characters are refused: comment lines
    /// and verbatim `dnsmasq:option` values.
    pub(crate) const LINE: Rules = Rules {
        lexed: false,
        line_start: false,
        comma: false,
        slash: false,
        hosts_name: false,
    };
    /// The whole rest of an option line after `option=`.
    pub(crate) const VALUE: Rules = Rules {
        lexed: true,
        ..Rules::LINE
    };
    /// One comma-separated field of an option.
    pub(crate) const FIELD: Rules = Rules {
        comma: true,
        ..Rules::VALUE
    };
    /// One comma-separated field at the start of a hostsfile line.
    pub(crate) const FIRST_FIELD: Rules = Rules {
        line_start: true,
        ..Rules::FIELD
    };
    /// A domain written between slashes (`local=/D/`, `server=/D/…`) and
    /// as a field (`domain=D`).
    pub(crate) const DOMAIN: Rules = Rules {
        slash: true,
        ..Rules::FIELD
    };
    /// A host name in the addnhosts file.
    pub(crate) const HOSTS_NAME: Rules = Rules {
        hosts_name: true,
        ..Rules::LINE
    };
}

/// Check `value` against `rules`; the error names `network` and `element`.
pub(crate) fn check(network: &str, element: &'static str, value: &str, rules: Rules) -> Result<()> {
    match violation(value, rules) {
        None => Ok(()),
        Some(reason) => Err(Error::UnsafeValue {
            network: network.to_string(),
            element,
            value: value.to_string(),
            reason,
        }),
    }
}

const LINE_BREAK: u8 = 1;
const CONTROL: u8 = 2;
const BLANK: u8 = 4;
const HASH: u8 = 8;
const COMMA: u8 = 16;
const SLASH: u8 = 32;
const QUOTE: u8 = 64;
const NON_ASCII: u8 = 128;

/// What each byte value is, as flags.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'\n' | b'\r' => LINE_BREAK | CONTROL,
            b'\t' => BLANK | CONTROL,
            0..=0x1f | 0x7f => CONTROL,
            b' ' => BLANK,
            b'#' => HASH,
            b',' => COMMA,
            b'/' => SLASH,
            b'"' => QUOTE,
            0x80..=0xff => NON_ASCII,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// The first reason `value` cannot be written under `rules`, if any.
pub(crate) fn violation(value: &str, rules: Rules) -> Option<UnsafeReason> {
    // One branch-free pass over the bytes notes what is present; most
    // values are plain ASCII and need nothing more.
    let seen = value
        .as_bytes()
        .iter()
        .fold(0u8, |acc, &b| acc | CLASS[usize::from(b)]);
    let has = |c: u8| seen & c != 0;
    let (line_break, control, blank, hash) = (has(LINE_BREAK), has(CONTROL), has(BLANK), has(HASH));
    let (comma, slash, quote, non_ascii) = (has(COMMA), has(SLASH), has(QUOTE), has(NON_ASCII));
    if line_break {
        return Some(UnsafeReason::LineBreak);
    }
    if rules.hosts_name {
        if value.is_empty() {
            return Some(UnsafeReason::Empty);
        }
        if blank {
            return Some(UnsafeReason::Whitespace);
        }
    }
    // C1 control characters (U+0080..U+009F) are two bytes in UTF-8.
    if control || (non_ascii && value.chars().any(char::is_control)) {
        return Some(UnsafeReason::ControlCharacter);
    }
    if rules.hosts_name && hash {
        return Some(UnsafeReason::Comment);
    }
    if rules.comma && comma {
        return Some(UnsafeReason::Comma);
    }
    if rules.slash && slash {
        return Some(UnsafeReason::Slash);
    }
    // Without quotes or a '#' there is nothing dnsmasq's lexing can change.
    if rules.lexed && (quote || hash) {
        return lexing_violation(value, rules.line_start);
    }
    None
}

/// Walk `value` the way dnsmasq's `read_file` walks a line: outside quotes
/// a `#` after whitespace (or at the start of a line) begins a comment;
/// inside quotes `\"`, `\\`, `\t`, `\n`, `\e`, `\b`, `\r` are escapes and a
/// quote left open is an error.
fn lexing_violation(value: &str, line_start: bool) -> Option<UnsafeReason> {
    let mut chars = value.chars();
    let mut white = line_start;
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut closed = false;
            while let Some(q) = chars.next() {
                if q == '\\' {
                    let mut peek = chars.clone();
                    if peek.next().is_some_and(|n| "\"tnebr\\".contains(n)) {
                        chars = peek;
                    }
                    continue;
                }
                if q == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Some(UnsafeReason::UnbalancedQuote);
            }
            white = false;
            continue;
        }
        if c.is_ascii_whitespace() {
            white = true;
        } else {
            if white && c == '#' {
                return Some(UnsafeReason::Comment);
            }
            white = false;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_pass() {
        for v in [
            "example value",
            "a.example.com",
            "default\"with\"quotes\"",
            "x#y",
        ] {
            assert_eq!(violation(v, Rules::LINE), None, "{v}");
        }
        assert_eq!(violation("example value", Rules::VALUE), None);
        assert_eq!(violation("a#b", Rules::VALUE), None);
        assert_eq!(violation("\"a #b\"", Rules::VALUE), None);
        assert_eq!(violation("\"a\\\"b\"", Rules::VALUE), None);
        assert_eq!(violation("#x", Rules::VALUE), None);
    }

    #[test]
    fn injections_are_refused() {
        assert_eq!(
            violation("a\u{85}b", Rules::LINE),
            Some(UnsafeReason::ControlCharacter)
        );
        assert_eq!(violation("caf\u{e9}", Rules::FIELD), None);
        assert_eq!(violation("a b", Rules::FIELD), None);
        assert_eq!(
            violation("a\nport=0", Rules::LINE),
            Some(UnsafeReason::LineBreak)
        );
        assert_eq!(
            violation("a\rb", Rules::VALUE),
            Some(UnsafeReason::LineBreak)
        );
        assert_eq!(
            violation("a\0b", Rules::VALUE),
            Some(UnsafeReason::ControlCharacter)
        );
        assert_eq!(
            violation("a\tb", Rules::VALUE),
            Some(UnsafeReason::ControlCharacter)
        );
        assert_eq!(
            violation("a\u{7f}", Rules::LINE),
            Some(UnsafeReason::ControlCharacter)
        );
        assert_eq!(
            violation("a,ignore", Rules::FIELD),
            Some(UnsafeReason::Comma)
        );
        assert_eq!(violation("a/b", Rules::DOMAIN), Some(UnsafeReason::Slash));
        assert_eq!(violation("a #b", Rules::VALUE), Some(UnsafeReason::Comment));
        assert_eq!(
            violation("#b", Rules::FIRST_FIELD),
            Some(UnsafeReason::Comment)
        );
        assert_eq!(
            violation("a\"b", Rules::VALUE),
            Some(UnsafeReason::UnbalancedQuote)
        );
        assert_eq!(
            violation("\"a\\\"", Rules::VALUE),
            Some(UnsafeReason::UnbalancedQuote)
        );
        assert_eq!(
            violation("a b", Rules::HOSTS_NAME),
            Some(UnsafeReason::Whitespace)
        );
        assert_eq!(
            violation("a\tb", Rules::HOSTS_NAME),
            Some(UnsafeReason::Whitespace)
        );
        assert_eq!(
            violation("a#b", Rules::HOSTS_NAME),
            Some(UnsafeReason::Comment)
        );
        assert_eq!(violation("", Rules::HOSTS_NAME), Some(UnsafeReason::Empty));
    }
}
