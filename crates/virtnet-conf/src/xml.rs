//! The XML layer: bounded parsing with roxmltree (no entity declarations,
//! so no entity expansion), accessors with libvirt's XPath semantics, C-style number
//! parsing as libvirt's `virStrToLong_*`, escaping and an indenting buffer
//! like libvirt's `virBuffer`.

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::{Error, ErrorDomain, ErrorKind};

/// Largest document accepted (bytes).
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Largest number of nodes a document may have.
pub const MAX_NODES: u32 = 200_000;
/// Deepest element nesting accepted (the serializer recurses on it).
pub const MAX_DEPTH: usize = 256;

/// Parse a document, enforcing the size, node-count and depth bounds and
/// checking the root element's name like `virXMLParse`.
pub(crate) fn parse_document<'a>(
    text: &'a str,
    url: &str,
    root: Option<&str>,
) -> Result<Document<'a>, Error> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Xml,
            format!(
                "document {url} is too large ({} bytes, at most {MAX_INPUT_BYTES})",
                text.len()
            ),
        ));
    }
    // A document type declaration is accepted, as libvirt accepts it, as
    // long as it declares no entity: without `<!ENTITY` nothing can be
    // expanded, and external DTDs are never loaded. Entity declarations
    // are refused (libvirt expands them; a small document could expand
    // into a huge one).
    if let Some(off) = text.find("<!ENTITY") {
        if text.contains("<!DOCTYPE") {
            return Err(Error::new(
                ErrorKind::XmlDetail,
                ErrorDomain::Xml,
                crate::xmlerror::format_at(text, url, "entity declarations are not accepted", off),
            ));
        }
    }
    let opts = ParsingOptions {
        // Past the check above, a DOCTYPE here declares no entity.
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, opts).map_err(|e| syntax_error(text, url, &e))?;
    // roxmltree reads a name with an empty prefix as if it had none
    // (`<:name>` as `<name>`, `:xmlns` as a namespace declaration); libxml2
    // keeps the colon. Such a name means something else to each: refused.
    if let Some((off, name)) = crate::xmlerror::empty_prefix_name(text) {
        return Err(Error::new(
            ErrorKind::XmlDetail,
            ErrorDomain::Xml,
            crate::xmlerror::format_at(
                text,
                url,
                &format!("Failed to parse QName '{name}'"),
                off + name.len(),
            ),
        ));
    }
    let mut depths: Vec<u32> = Vec::new();
    let mut max_depth = 0usize;
    for n in doc.descendants() {
        let id = n.id().get_usize();
        let d = match n.parent() {
            Some(p) => depths.get(p.id().get_usize()).copied().unwrap_or(0) + 1,
            None => 0,
        };
        if depths.len() <= id {
            depths.resize(id + 1, 0);
        }
        depths[id] = d;
        max_depth = max_depth.max(d as usize);
    }
    if max_depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Xml,
            format!("document {url} is nested too deeply (at most {MAX_DEPTH} levels)"),
        ));
    }
    let r = doc.root_element();
    let Some(root) = root else {
        return Ok(doc);
    };
    if r.tag_name().name() != root {
        return Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Xml,
            format!(
                "expecting root element of '{root}', not '{}'",
                r.tag_name().name()
            ),
        ));
    }
    Ok(doc)
}

fn syntax_error(text: &str, url: &str, e: &roxmltree::Error) -> Error {
    Error::new(
        ErrorKind::XmlDetail,
        ErrorDomain::Xml,
        crate::xmlerror::format(text, url, e),
    )
}

/// True for an element without namespace called `name` (what an XPath
/// step like `./name` matches).
fn is_plain(n: &Node, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace().is_none() && n.tag_name().name() == name
}

/// `./name[1]`: the first child element without namespace called `name`.
pub(crate) fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is_plain(c, name))
}

/// `./name`: all child elements without namespace called `name`.
pub(crate) fn children<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    n.children().filter(|c| is_plain(c, name)).collect()
}

/// `virXMLNodeGetSubelement`: first child element with this local name,
/// whatever its namespace.
pub(crate) fn subelement<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// `virXMLNodeGetSubelementList`.
pub(crate) fn subelements<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    n.children()
        .filter(|c| c.is_element() && c.tag_name().name() == name)
        .collect()
}

/// The string value of a node (all descendant text concatenated).
pub(crate) fn text_content(n: Node) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect()
}

/// `string(./name[1])`: text of the first child `name`, `None` if absent
/// or empty.
pub(crate) fn child_text(n: Node, name: &str) -> Option<String> {
    child(n, name).map(text_content).filter(|s| !s.is_empty())
}

fn plain_attr<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes()
        .find(|a| a.namespace().is_none() && a.name() == name)
        .map(|a| a.value())
}

/// `string(./@name)`: the attribute's value, `None` if absent or empty.
pub(crate) fn xattr<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    plain_attr(n, name).filter(|s| !s.is_empty())
}

/// `string(./child[1]/@attr)`.
pub(crate) fn child_attr<'a>(n: Node<'a, '_>, child_name: &str, attr: &str) -> Option<&'a str> {
    child(n, child_name).and_then(|c| xattr(c, attr))
}

/// `string(./child/@attr)`: the attribute of the first `child` that has it.
pub(crate) fn first_child_attr<'a>(
    n: Node<'a, '_>,
    child_name: &str,
    attr: &str,
) -> Option<&'a str> {
    n.children()
        .filter(|c| is_plain(c, child_name))
        .find_map(|c| plain_attr(c, attr))
        .filter(|s| !s.is_empty())
}

/// `virXMLPropString`: the attribute by local name (any namespace), raw
/// (an empty value is returned as such).
pub(crate) fn prop<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes().find(|a| a.name() == name).map(|a| a.value())
}

/// The element's name as libxml2 reports it in messages (local name).
pub(crate) fn elem_name<'a>(n: Node<'a, '_>) -> &'a str {
    n.tag_name().name()
}

/// Result of scanning a number the way C's `strtoul`/`strtol` do.
struct Scan {
    negative: bool,
    /// Magnitude, saturated at `u128::MAX` when out of range.
    magnitude: u128,
    overflow: bool,
    digits: bool,
    sign_or_minus_seen: bool,
    end: usize,
}

fn scan(s: &str, base: u32) -> Scan {
    let b = s.as_bytes();
    let mut pos = 0;
    while pos < b.len() && matches!(b[pos], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        pos += 1;
    }
    let mut negative = false;
    if pos < b.len() && (b[pos] == b'+' || b[pos] == b'-') {
        negative = b[pos] == b'-';
        pos += 1;
    }
    let mut base = base;
    let hex_prefix = b.get(pos) == Some(&b'0')
        && matches!(b.get(pos + 1), Some(b'x' | b'X'))
        && b.get(pos + 2).is_some_and(|c| c.is_ascii_hexdigit());
    if (base == 0 || base == 16) && hex_prefix {
        base = 16;
        pos += 2;
    } else if base == 0 {
        base = if b.get(pos) == Some(&b'0') { 8 } else { 10 };
    }
    let mut magnitude: u128 = 0;
    let mut overflow = false;
    let start = pos;
    while pos < b.len() {
        let d = match (b[pos] as char).to_digit(36) {
            Some(d) if d < base => d,
            _ => break,
        };
        match magnitude
            .checked_mul(u128::from(base))
            .and_then(|m| m.checked_add(u128::from(d)))
        {
            Some(m) if m <= u128::from(u64::MAX) => magnitude = m,
            _ => {
                overflow = true;
                magnitude = u128::MAX;
            }
        }
        pos += 1;
    }
    let digits = pos > start;
    Scan {
        negative,
        magnitude,
        overflow,
        digits,
        sign_or_minus_seen: negative,
        end: if digits { pos } else { 0 },
    }
}

fn complete(sc: &Scan, s: &str) -> bool {
    sc.digits && sc.end == s.len() && !sc.overflow
}

/// `virStrToLong_ui`: unsigned int; "-N" wraps like C (so "-1" is 4294967295).
pub(crate) fn str_to_ui(s: &str, base: u32) -> Option<u32> {
    let sc = scan(s, base);
    if !complete(&sc, s) {
        return None;
    }
    if sc.negative {
        if sc.magnitude > u128::from(u32::MAX) {
            return None;
        }
        let m = sc.magnitude as u64;
        return Some(((1u64 << 32).wrapping_sub(m) & 0xffff_ffff) as u32);
    }
    u32::try_from(sc.magnitude).ok()
}

/// `virStrToLong_uip`: unsigned int, no minus sign allowed.
pub(crate) fn str_to_uip(s: &str, base: u32) -> Option<u32> {
    let sc = scan(s, base);
    if !complete(&sc, s) || sc.sign_or_minus_seen {
        return None;
    }
    u32::try_from(sc.magnitude).ok()
}

/// `virStrToLong_ullp` / `virStrToLong_ulp` (64-bit long): no minus sign.
pub(crate) fn str_to_ullp(s: &str, base: u32) -> Option<u64> {
    let sc = scan(s, base);
    if !complete(&sc, s) || sc.sign_or_minus_seen {
        return None;
    }
    u64::try_from(sc.magnitude).ok()
}

/// `virStrToLong_i`: signed int.
pub(crate) fn str_to_i(s: &str, base: u32) -> Option<i32> {
    let sc = scan(s, base);
    if !complete(&sc, s) {
        return None;
    }
    let m = i64::try_from(sc.magnitude).ok()?;
    let v = if sc.negative { -m } else { m };
    i32::try_from(v).ok()
}

/// How a `virXMLProp*` helper failed, rendered with libvirt's messages.
pub(crate) fn prop_invalid(node: Node, name: &str, value: &str, expected: &str) -> Error {
    Error::new(
        ErrorKind::XmlError,
        ErrorDomain::Xml,
        format!(
            "Invalid value for attribute '{name}' in element '{}': '{value}'. {expected}",
            elem_name(node)
        ),
    )
}

/// `virXMLPropUInt`: `Ok(None)` when absent.
pub(crate) fn prop_uint(
    node: Node,
    name: &str,
    base: u32,
    nonzero: bool,
) -> Result<Option<u32>, Error> {
    let Some(v) = prop(node, name) else {
        return Ok(None);
    };
    let Some(n) = str_to_uip(v, base) else {
        return Err(prop_invalid(
            node,
            name,
            v,
            "Expected non-negative integer value",
        ));
    };
    if nonzero && n == 0 {
        return Err(zero_not_permitted(node, name));
    }
    Ok(Some(n))
}

/// `virXMLPropULongLong`: `Ok(None)` when absent.
pub(crate) fn prop_ulonglong(node: Node, name: &str, base: u32) -> Result<Option<u64>, Error> {
    let Some(v) = prop(node, name) else {
        return Ok(None);
    };
    match str_to_ullp(v, base) {
        Some(n) => Ok(Some(n)),
        None => Err(prop_invalid(
            node,
            name,
            v,
            "Expected non-negative integer value",
        )),
    }
}

/// `virXMLPropInt` with `NONZERO | NONNEGATIVE`.
pub(crate) fn prop_int_positive(node: Node, name: &str) -> Result<Option<i32>, Error> {
    let Some(v) = prop(node, name) else {
        return Ok(None);
    };
    let Some(n) = str_to_i(v, 10) else {
        return Err(prop_invalid(node, name, v, "Expected integer value"));
    };
    if n < 0 {
        return Err(prop_invalid(node, name, v, "Expected non-negative value"));
    }
    if n == 0 {
        return Err(zero_not_permitted(node, name));
    }
    Ok(Some(n))
}

fn zero_not_permitted(node: Node, name: &str) -> Error {
    Error::new(
        ErrorKind::XmlError,
        ErrorDomain::Xml,
        format!(
            "Invalid value for attribute '{name}' in element '{}': Zero is not permitted",
            elem_name(node)
        ),
    )
}

/// `virXMLPropEnum` and friends: parse an enum attribute; `Ok(None)` when
/// absent. `nonzero` rejects the enum's zero value (`default`/`none`).
pub(crate) fn prop_enum<T: PartialEq + Copy>(
    node: Node,
    name: &str,
    lookup: impl Fn(&str) -> Option<T>,
    zero: Option<T>,
) -> Result<Option<T>, Error> {
    let Some(v) = prop(node, name) else {
        return Ok(None);
    };
    match lookup(v) {
        Some(t) if zero != Some(t) => Ok(Some(t)),
        _ => Err(Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Xml,
            format!(
                "Invalid value for attribute '{name}' in element '{}': '{v}'.",
                elem_name(node)
            ),
        )),
    }
}

/// `virXMLPropTristateBool`.
pub(crate) fn prop_tristate(
    node: Option<Node>,
    name: &str,
) -> Result<crate::model::TristateBool, Error> {
    let Some(node) = node else {
        return Ok(crate::model::TristateBool::Absent);
    };
    Ok(prop_enum(node, name, crate::model::TristateBool::from_yes_no, None)?.unwrap_or_default())
}

/// `virXMLPropStringRequired`.
pub(crate) fn prop_required<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str, Error> {
    prop(node, name).ok_or_else(|| {
        Error::new(
            ErrorKind::XmlError,
            ErrorDomain::Xml,
            format!(
                "Missing required attribute '{name}' in element '{}'",
                elem_name(node)
            ),
        )
    })
}

fn escape_with(s: &str, attr: bool) -> std::borrow::Cow<'_, str> {
    let special = |c: char| {
        matches!(c, '<' | '>' | '&' | '\'' | '"' | '\r')
            || (c < ' ' && (attr || c != '\n') && c != '\t')
            || (attr && c == '\t')
    };
    if !s.chars().any(special) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if c < ' ' && !matches!(c, '\t' | '\n') => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Escape an attribute value like libvirt's `virBufferEscapeString`
/// (XML specials become entities, other control characters vanish), and
/// also write tab, newline and carriage return as character references so
/// the value survives being parsed again (an XML parser turns literal
/// whitespace in attributes into spaces).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, true)
}

/// Escape element content like libvirt's `virBufferEscapeString`; a
/// carriage return is written as `&#13;` so it survives parsing.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    escape_with(s, false)
}

/// An output buffer with libvirt's auto-indentation: each write that starts
/// a line is prefixed with the current indentation.
#[derive(Debug, Default)]
pub(crate) struct Buf {
    out: String,
    indent: usize,
}

impl Buf {
    pub(crate) fn new() -> Buf {
        Buf::default()
    }

    /// Append `s`, indenting first if at the start of a line.
    pub(crate) fn add(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.out.is_empty() || self.out.ends_with('\n') {
            for _ in 0..self.indent {
                self.out.push(' ');
            }
        }
        self.out.push_str(s);
    }

    pub(crate) fn adjust(&mut self, by: isize) {
        self.indent = self.indent.saturating_add_signed(by);
    }

    pub(crate) fn indent(&self) -> usize {
        self.indent
    }

    pub(crate) fn into_string(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_parsing() {
        assert_eq!(str_to_ui("42", 10), Some(42));
        assert_eq!(str_to_ui(" 42", 10), Some(42));
        assert_eq!(str_to_ui("42 ", 10), None);
        assert_eq!(str_to_ui("-1", 10), Some(u32::MAX));
        assert_eq!(str_to_ui("0x10", 0), Some(16));
        assert_eq!(str_to_ui("010", 0), Some(8));
        assert_eq!(str_to_ui("4294967296", 10), None);
        assert_eq!(str_to_uip("-1", 10), None);
        assert_eq!(str_to_uip("0x0003", 0), Some(3));
        assert_eq!(str_to_uip("", 10), None);
        assert_eq!(str_to_ullp("18446744073709551615", 10), Some(u64::MAX));
        assert_eq!(str_to_ullp("18446744073709551616", 10), None);
        assert_eq!(str_to_i("-5", 10), Some(-5));
        assert_eq!(str_to_i("2147483648", 10), None);
        assert_eq!(str_to_ui("0x", 0), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&'\"c"), "a&lt;b&gt;&amp;&apos;&quot;c");
        assert_eq!(escape("x\u{1}y\tz\n"), "xy&#9;z&#10;");
        assert_eq!(escape_text("x\u{1}y\tz\n\r"), "xy\tz\n&#13;");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn rejects_entities_and_bounds() {
        let e = parse_document(
            "<!DOCTYPE network [<!ENTITY x 'y'>]><network/>",
            "(network_definition)",
            Some("network"),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::XmlDetail);
        // Declared in a comment, an entity still turns the DTD away: the
        // check is on the text, before any parsing.
        let e = parse_document(
            "<!DOCTYPE network [<!-- <!ENTITY x 'y'> -->]><network/>",
            "(network_definition)",
            Some("network"),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::XmlDetail);
        for ok in [
            "<!DOCTYPE network><network/>",
            "<!DOCTYPE network SYSTEM 'http://example.com/n.dtd'><network/>",
            "<!DOCTYPE network [<!ELEMENT network ANY>]><network/>",
            "<network><!-- <!ENTITY is just text here --></network>",
        ] {
            parse_document(ok, "(network_definition)", Some("network"))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = parse_document("<foo/>", "(network_definition)", Some("network")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "XML error: expecting root element of 'network', not 'foo'"
        );
        let deep = format!(
            "<network>{}{}</network>",
            "<a>".repeat(300),
            "</a>".repeat(300)
        );
        assert!(parse_document(&deep, "(network_definition)", Some("network")).is_err());
    }
}
