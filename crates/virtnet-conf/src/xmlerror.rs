//! XML syntax errors worded and placed the way libvirt shows libxml2's:
//!
//! ```text
//! (network_definition):2: Opening and ending tag mismatch: name line 2 and nam
//!   <name>x</nam>
//! ---------------^
//! ```
//!
//! roxmltree finds the same faults as libxml2; this module gives the common
//! ones libxml2's words, its line and the column it stood at when it gave
//! up (after a tag's `>`, an entity's `;`, an attribute's value), and at the
//! end of the input the last line, or `(null)` when that line is empty.
//! Faults without a libxml2 counterpart here keep roxmltree's wording.

use roxmltree::{Error as XmlError, TextPos};

/// The message, without `url:line: `, and the byte offset it refers to.
fn describe(text: &str, e: &XmlError) -> Option<(String, usize)> {
    let at = |pos: TextPos| offset_of(text, pos);
    let eof = text.len();
    Some(match e {
        XmlError::UnexpectedCloseTag(expected, actual, pos) => {
            let off = at(*pos);
            let line = open_elements(text, off)
                .last()
                .map_or_else(|| line_of(text, off), |o| o.line);
            (
                format!("Opening and ending tag mismatch: {expected} line {line} and {actual}"),
                after(text, off, b'>'),
            )
        }
        XmlError::UnclosedRootNode => premature_end(text)?,
        XmlError::UnexpectedEndOfStream => {
            let last = text.rfind('<').unwrap_or(eof);
            let tag = &text[last..];
            if tag.contains('>') || tag.starts_with("<!") || tag.starts_with("<?") {
                premature_end(text)?
            } else if tag.starts_with("</") {
                ("expected '>'".to_string(), eof)
            } else {
                let name = &tag[1..name_end(text.as_bytes(), last + 1) - last];
                (
                    format!(
                        "Couldn't find end of Start Tag {name} line {}",
                        line_of(text, last)
                    ),
                    eof,
                )
            }
        }
        XmlError::DuplicatedAttribute(name, pos) => (
            format!("Attribute {name} redefined"),
            after_attribute(text, at(*pos)),
        ),
        XmlError::UnknownEntityReference(name, pos) => (
            format!("Entity '{name}' not defined"),
            after(text, at(*pos), b';'),
        ),
        XmlError::NoRootNode if text.is_empty() => ("Document is empty".to_string(), eof),
        XmlError::NoRootNode => ("Start tag expected, '<' not found".to_string(), eof),
        XmlError::UnknownToken(pos) => match root_before(text, at(*pos)) {
            Root::NotYet => ("Start tag expected, '<' not found".to_string(), at(*pos)),
            Root::Closed => (
                "Extra content at the end of the document".to_string(),
                at(*pos),
            ),
            Root::Open => return None,
        },
        XmlError::InvalidName(pos) if text[..at(*pos)].ends_with('<') => {
            ("StartTag: invalid element name".to_string(), at(*pos))
        }
        XmlError::InvalidChar2("a quote", _, pos) => {
            ("AttValue: \" or ' expected".to_string(), at(*pos))
        }
        XmlError::InvalidChar(b'\'' | b'"', b'<', pos) => (
            "Unescaped '<' not allowed in attributes values".to_string(),
            at(*pos),
        ),
        _ => return None,
    })
}

/// The error text libvirt prints for a document that does not parse:
/// `URL:LINE: MESSAGE`, the line, and a caret under the column.
pub(crate) fn format(text: &str, url: &str, e: &XmlError) -> String {
    let (msg, off) = match describe(text, e) {
        Some(d) => d,
        None => {
            // roxmltree's own words, without its " at ROW:COL".
            let msg = e.to_string();
            let msg = match msg.rsplit_once(" at ") {
                Some((m, _)) if !m.is_empty() => m.to_string(),
                _ => msg,
            };
            (msg, offset_of(text, e.pos()))
        }
    };
    format_at(text, url, &msg, off)
}

/// Byte offset of a roxmltree position (1-based row, column in characters).
fn offset_of(text: &str, pos: TextPos) -> usize {
    let mut off = 0;
    for _ in 1..pos.row {
        match text[off..].find('\n') {
            Some(i) => off += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[off..].find('\n').map_or(text.len(), |i| off + i);
    text[off..line_end]
        .char_indices()
        .nth(pos.col.saturating_sub(1) as usize)
        .map_or(line_end, |(i, _)| off + i)
}

fn line_of(text: &str, off: usize) -> usize {
    1 + text.as_bytes()[..off]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The offset just past the first `byte` at or after `off`; the end of the
/// input when there is none.
fn after(text: &str, off: usize, byte: u8) -> usize {
    text.as_bytes()[off..]
        .iter()
        .position(|&b| b == byte)
        .map_or(text.len(), |i| off + i + 1)
}

/// From the start of an attribute, the offset past its quoted value and the
/// blanks after it (where libxml2 notices a repeated attribute).
fn after_attribute(text: &str, off: usize) -> usize {
    let b = text.as_bytes();
    let mut i = off;
    while i < b.len() && b[i] != b'=' {
        i += 1;
    }
    i += 1;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if let Some(&q) = b.get(i).filter(|q| **q == b'\'' || **q == b'"') {
        i = after(text, i + 1, q);
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i.min(b.len())
}

/// Where the tag name starting at `from` ends.
fn name_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c.is_ascii_whitespace() || c == b'/' || c == b'>')
        .map_or(b.len(), |p| from + p)
}

/// `Premature end of data in tag NAME line N`, for the innermost element
/// still open at the end of the input.
fn premature_end(text: &str) -> Option<(String, usize)> {
    let open = open_elements(text, text.len());
    let inner = open.last()?;
    Some((
        format!(
            "Premature end of data in tag {} line {}",
            inner.name, inner.line
        ),
        text.len(),
    ))
}

/// An element opened and not yet closed.
struct Open<'a> {
    name: &'a str,
    line: usize,
}

/// Where the root element stands at some point of the document.
enum Root {
    NotYet,
    Open,
    Closed,
}

fn root_before(text: &str, end: usize) -> Root {
    let (open, seen) = scan(text, end);
    match (seen, open.is_empty()) {
        (false, _) => Root::NotYet,
        (true, false) => Root::Open,
        (true, true) => Root::Closed,
    }
}

/// The elements open at `end`, outermost first. The text before `end` is
/// known to be well formed (roxmltree got past it), so a plain scan of
/// tags, skipping comments, processing instructions, CDATA and quoted
/// attribute values, is enough.
fn open_elements(text: &str, end: usize) -> Vec<Open<'_>> {
    scan(text, end).0
}

/// The elements open at `end`, and whether any element began before it.
fn scan(text: &str, end: usize) -> (Vec<Open<'_>>, bool) {
    let mut stack: Vec<Open<'_>> = Vec::new();
    let mut seen = false;
    // Lines counted so far, up to byte `counted`: linear in the input.
    let (mut line, mut counted) = (1, 0);
    walk_tags(text, end, |tag| match tag {
        Tag::End { .. } => {
            stack.pop();
        }
        Tag::Start {
            at,
            name,
            self_closing,
            ..
        } => {
            line += text.as_bytes()[counted..at]
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            counted = at;
            if !self_closing {
                stack.push(Open { name, line });
            }
            seen = true;
        }
    });
    (stack, seen)
}

/// A tag met by [`walk_tags`].
enum Tag<'a> {
    /// `<name attributes>` or `<name attributes/>`; `at` is the offset of
    /// its `<`, `attributes` the text between the name and the `>`.
    Start {
        at: usize,
        name: &'a str,
        attributes: (usize, &'a str),
        self_closing: bool,
    },
    /// `</name>`.
    End { at: usize, name: &'a str },
}

/// Calls `each` for every complete start and end tag before `end`, skipping
/// comments, processing instructions, CDATA and declarations, and the
/// insides of quoted attribute values. Stops at the first unfinished
/// construct.
fn walk_tags<'a>(text: &'a str, end: usize, mut each: impl FnMut(Tag<'a>)) {
    let b = &text.as_bytes()[..end];
    let mut i = 0;
    let skip_to = |from: usize, pat: &str| -> Option<usize> {
        text[from..end].find(pat).map(|p| from + p + pat.len())
    };
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &text[i..end];
        let next = if rest.starts_with("<!--") {
            skip_to(i + 4, "-->")
        } else if rest.starts_with("<![CDATA[") {
            skip_to(i + 9, "]]>")
        } else if rest.starts_with("<?") {
            skip_to(i + 2, "?>")
        } else if rest.starts_with("<!") {
            skip_to(i + 2, ">")
        } else if rest.starts_with("</") {
            let next = skip_to(i + 2, ">");
            if next.is_some() {
                each(Tag::End {
                    at: i,
                    name: &text[i + 2..name_end(b, i + 2)],
                });
            }
            next
        } else {
            let start = i + 1;
            let stop = name_end(b, start);
            // Past the attributes to this tag's '>'.
            let mut j = stop;
            let mut closed = None;
            while j < b.len() {
                match b[j] {
                    q @ (b'\'' | b'"') => j = after(text, j + 1, q).min(b.len()),
                    b'>' => {
                        closed = Some(j);
                        break;
                    }
                    _ => j += 1,
                }
            }
            closed.map(|gt| {
                let self_closing = b[gt - 1] == b'/';
                let attr_end = if self_closing { gt - 1 } else { gt };
                each(Tag::Start {
                    at: i,
                    name: &text[start..stop],
                    attributes: (stop, &text[stop..attr_end.max(stop)]),
                    self_closing,
                });
                gt + 1
            })
        };
        match next {
            Some(n) => i = n,
            None => break,
        }
    }
}

/// The first element or attribute name with an empty prefix (`<:a>`,
/// `:b='1'`), and its offset. roxmltree reads `:b` as `b` and `:xmlns` as
/// a namespace declaration; libxml2 keeps the colon in the name. `text`
/// must be a well-formed document.
pub(crate) fn empty_prefix_name(text: &str) -> Option<(usize, &str)> {
    let mut found = None;
    walk_tags(text, text.len(), |tag| {
        if found.is_some() {
            return;
        }
        match tag {
            Tag::End { at, name } => {
                if name.starts_with(':') {
                    found = Some((at + 2, name));
                }
            }
            Tag::Start {
                at,
                name,
                attributes: (offset, attrs),
                ..
            } => {
                if name.starts_with(':') {
                    found = Some((at + 1, name));
                    return;
                }
                let b = attrs.as_bytes();
                let mut k = 0;
                while k < b.len() {
                    if b[k].is_ascii_whitespace() {
                        k += 1;
                        continue;
                    }
                    let name_start = k;
                    while k < b.len() && b[k] != b'=' && !b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if attrs[name_start..k].starts_with(':') {
                        found = Some((offset + name_start, &attrs[name_start..k]));
                        return;
                    }
                    // Past '=' and the quoted value.
                    while k < b.len() && b[k] != b'\'' && b[k] != b'"' {
                        k += 1;
                    }
                    if let Some(&q) = b.get(k) {
                        k = b[k + 1..]
                            .iter()
                            .position(|&c| c == q)
                            .map_or(b.len(), |p| k + 1 + p + 1);
                    }
                }
            }
        }
    });
    found
}

/// An error at byte `off` of `text`, shown the way libvirt shows libxml2's.
pub(crate) fn format_at(text: &str, url: &str, msg: &str, off: usize) -> String {
    let line_start = text[..off].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[off..].find('\n').map_or(text.len(), |i| off + i);
    let line = &text[line_start..line_end];
    let row = line_of(text, off);
    if line.is_empty() && off == text.len() {
        // libxml2 has no context to show at the very end of the input.
        return format!("{url}:{row}: {msg}\n(null)\n^");
    }
    // One mark per byte, as libvirt draws it; tabs stay tabs.
    let pointer: String = text.as_bytes()[line_start..off]
        .iter()
        .map(|&c| if c == b'\t' { '\t' } else { '-' })
        .chain(std::iter::once('^'))
        .collect();
    format!("{url}:{row}: {msg}\n{line}\n{pointer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = roxmltree::Document::parse(text).unwrap_err();
        format(text, "(t)", &e)
    }

    #[test]
    fn positions_inside_lines_and_at_the_end() {
        assert_eq!(
            err("<a>\n  <b>x</c>\n</a>\n"),
            "(t):2: Opening and ending tag mismatch: b line 2 and c\n  <b>x</c>\n----------^"
        );
        assert_eq!(
            err("<a>\n <b>\n"),
            "(t):3: Premature end of data in tag b line 2\n(null)\n^"
        );
        assert_eq!(
            err("<a>\n <b>x"),
            "(t):2: Premature end of data in tag b line 2\n <b>x\n-----^"
        );
        assert_eq!(err(""), "(t):1: Document is empty\n(null)\n^");
    }

    #[test]
    fn the_scan_skips_what_is_not_a_tag() {
        let text = "<a><!-- <x> --><?p <y>?><![CDATA[<z>]]><b c='>' d=\"/>\"/><e>";
        let open: Vec<&str> = open_elements(text, text.len())
            .iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(open, ["a", "e"]);
    }

    #[test]
    fn names_with_an_empty_prefix_are_found_and_nothing_else() {
        let clean =
            "<a x=':y' z=\"b :c\"><!-- <:d> --><![CDATA[<:e f=1>]]><?p :g?><b:h xmlns:b='u'/></a>";
        assert_eq!(empty_prefix_name(clean), None);
        assert_eq!(empty_prefix_name("<a><:b/></a>"), Some((4, ":b")));
        assert_eq!(empty_prefix_name("<a x='1'\n :y='2'/>"), Some((10, ":y")));
        assert_eq!(empty_prefix_name("<a :xmlns='u'/>"), Some((3, ":xmlns")));
    }

    #[test]
    fn lines_are_counted_across_many_tags() {
        let text = format!("<a>\n{}<b>\n</c>", "<x y='1'/>\n".repeat(5000));
        assert_eq!(
            err(&text),
            "(t):5003: Opening and ending tag mismatch: b line 5002 and c\n</c>\n----^"
        );
    }

    #[test]
    fn multibyte_text_before_the_fault() {
        assert_eq!(
            err("<a>\n  <b>é&x;</b></a>"),
            "(t):2: Entity 'x' not defined\n  <b>é&x;</b></a>\n----------^"
        );
    }
}
