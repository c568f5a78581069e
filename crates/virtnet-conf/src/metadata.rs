//! Verbatim XML subtrees (`<metadata>`), kept and re-serialized the way
//! libvirt does it with libxml2.

/// A namespace declaration `xmlns:prefix='uri'` (`prefix` `None` for `xmlns=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NsDecl {
    /// The prefix, `None` for the default namespace.
    pub prefix: Option<String>,
    /// The namespace URI.
    pub uri: String,
}

/// An attribute with its (optional) namespace prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XmlAttr {
    /// Prefix as bound in the serialized tree.
    pub prefix: Option<String>,
    /// Local name.
    pub name: String,
    /// Value (unescaped).
    pub value: String,
}

/// A node inside a kept subtree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum XmlNode {
    /// An element.
    Element(XmlElement),
    /// Character data (unescaped).
    Text(String),
    /// A CDATA section (written back as such).
    CData(String),
    /// A comment (`<!--…-->`).
    Comment(String),
    /// A processing instruction.
    Pi {
        /// Target.
        target: String,
        /// Data, if any.
        data: Option<String>,
    },
}

/// An element of a kept subtree, with the namespace declarations it carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct XmlElement {
    /// Prefix as bound in the serialized tree.
    pub prefix: Option<String>,
    /// Namespace URI the element is in, if any.
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// Namespace declarations on this element.
    pub ns_decls: Vec<NsDecl>,
    /// Attributes in document order.
    pub attrs: Vec<XmlAttr>,
    /// Children in document order.
    pub children: Vec<XmlNode>,
}

use roxmltree::Node;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The raw start tag of an element in the source document.
fn start_tag<'a>(node: Node<'a, '_>) -> &'a str {
    let text = node.document().input_text();
    let r = node.range();
    let Some(rest) = text.get(r.start..r.end) else {
        return "";
    };
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return &rest[..=i],
            _ => {}
        }
    }
    rest
}

/// The qualified name of an element as written (`prefix:local` or `local`).
fn element_qname<'a>(node: Node<'a, '_>) -> &'a str {
    let tag = start_tag(node);
    let body = tag.strip_prefix('<').unwrap_or(tag);
    let end = body
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(body.len());
    &body[..end]
}

fn split_qname(q: &str) -> (Option<String>, String) {
    match q.split_once(':') {
        Some((p, l)) => (Some(p.to_string()), l.to_string()),
        None => (None, q.to_string()),
    }
}

/// Prefixes declared on this element's start tag, in document order
/// (`None` for a default namespace declaration).
fn declared_prefixes(node: Node) -> Vec<Option<String>> {
    let tag = start_tag(node);
    let mut out = Vec::new();
    let b = tag.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let mut name_start: Option<usize> = None;
    // Skip the element name.
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == b'"' || c == b'\'' {
            quote = Some(c);
        } else if c.is_ascii_whitespace() || c == b'=' || c == b'>' || c == b'/' {
            if let Some(s) = name_start.take() {
                let name = &tag[s..i];
                if name == "xmlns" {
                    out.push(None);
                } else if let Some(p) = name.strip_prefix("xmlns:") {
                    out.push(Some(p.to_string()));
                }
            }
        } else if name_start.is_none() && !c.is_ascii_whitespace() {
            name_start = Some(i);
        }
        i += 1;
    }
    out
}

/// Where an element's end tag starts in the source.
fn end_tag_start(node: Node) -> usize {
    let text = node.document().input_text();
    let r = node.range();
    text.get(r.start..r.end)
        .and_then(|s| s.rfind("</"))
        .map_or(r.end, |i| r.start + i)
}

/// Normalize line ends as an XML parser does.
fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Decode the entity and character references of raw character data.
fn decode_refs(raw: &str) -> String {
    let raw = normalize_newlines(raw);
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else {
            out.push_str(rest);
            return out;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&rest[..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Split raw character data into text and CDATA sections.
fn text_segments(raw: &str) -> Vec<XmlNode> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.find("<![CDATA[") {
        if i > 0 {
            out.push(XmlNode::Text(decode_refs(&rest[..i])));
        }
        let body = &rest[i + 9..];
        let end = body.find("]]>").unwrap_or(body.len());
        out.push(XmlNode::CData(normalize_newlines(&body[..end])));
        rest = body.get(end + 3..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(XmlNode::Text(decode_refs(rest)));
    }
    out
}

fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

fn preserve_space(node: Node) -> bool {
    for n in node.ancestors().filter(|n| n.is_element()) {
        if let Some(v) = n.attribute((XML_NS, "space")) {
            return v == "preserve";
        }
    }
    false
}

/// Scope of namespace declarations inside the copy.
struct Scope {
    frames: Vec<Vec<(Option<String>, String)>>,
}

impl Scope {
    fn find(&self, prefix: &Option<String>) -> Option<&str> {
        self.frames
            .iter()
            .rev()
            .flat_map(|f| f.iter())
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

fn copy_element(
    node: Node,
    scope: &mut Scope,
    root_decls: &mut Vec<NsDecl>,
    is_root: bool,
) -> XmlElement {
    let (prefix, name) = split_qname(element_qname(node));
    let mut el = XmlElement {
        prefix: prefix.clone(),
        namespace: node.tag_name().namespace().map(str::to_string),
        name,
        ..XmlElement::default()
    };
    let mut frame = Vec::new();
    for p in declared_prefixes(node) {
        if let Some(uri) = node.lookup_namespace_uri(p.as_deref()) {
            frame.push((p.clone(), uri.to_string()));
            el.ns_decls.push(NsDecl {
                prefix: p,
                uri: uri.to_string(),
            });
        }
    }
    scope.frames.push(frame);
    if is_root {
        // The copy's root starts with its own declarations; anything found
        // missing below is added to it.
        root_decls.clear();
        root_decls.extend(el.ns_decls.iter().cloned());
    }
    let reconcile =
        |p: &Option<String>, uri: &str, scope: &mut Scope, root_decls: &mut Vec<NsDecl>| {
            if p.as_deref() == Some("xml") || scope.find(p).is_some() {
                return;
            }
            if root_decls.iter().any(|d| &d.prefix == p) {
                return;
            }
            root_decls.push(NsDecl {
                prefix: p.clone(),
                uri: uri.to_string(),
            });
            if let Some(f) = scope.frames.first_mut() {
                f.push((p.clone(), uri.to_string()));
            }
        };
    if let Some(uri) = node.tag_name().namespace() {
        reconcile(&prefix, uri, scope, root_decls);
    }
    let text = node.document().input_text();
    for a in node.attributes() {
        let qname = text.get(a.range_qname()).unwrap_or(a.name());
        let (ap, an) = split_qname(qname);
        if let (Some(uri), Some(_)) = (a.namespace(), &ap) {
            reconcile(&ap, uri, scope, root_decls);
        }
        el.attrs.push(XmlAttr {
            prefix: if a.namespace().is_some() { ap } else { None },
            name: an,
            value: a.value().to_string(),
        });
    }
    let kids: Vec<Node> = node.children().collect();
    for (i, c) in kids.iter().enumerate() {
        if c.is_element() {
            let child = copy_element(*c, scope, root_decls, false);
            el.children.push(XmlNode::Element(child));
        } else if c.is_text() {
            let t = c.text().unwrap_or("");
            if is_blank(t) && !preserve_space(node) {
                let last_is_end = i + 1 == kids.len();
                let keep = if el.children.is_empty() {
                    last_is_end
                } else {
                    matches!(
                        el.children.last(),
                        Some(XmlNode::Text(_) | XmlNode::CData(_))
                    ) || matches!(
                        el.children.first(),
                        Some(XmlNode::Text(_) | XmlNode::CData(_))
                    )
                };
                if !keep {
                    continue;
                }
            }
            let end = match kids.get(i + 1) {
                Some(next) => next.range().start,
                None => end_tag_start(node),
            };
            let raw = text.get(c.range().start..end).unwrap_or(t);
            for seg in text_segments(raw) {
                match (seg, el.children.last_mut()) {
                    (XmlNode::Text(t), Some(XmlNode::Text(prev))) => prev.push_str(&t),
                    (seg, _) => el.children.push(seg),
                }
            }
        } else if c.is_comment() {
            el.children
                .push(XmlNode::Comment(c.text().unwrap_or("").to_string()));
        } else if let Some(pi) = c.pi() {
            el.children.push(XmlNode::Pi {
                target: pi.target.to_string(),
                data: pi.value.map(str::to_string),
            });
        }
    }
    scope.frames.pop();
    el
}

/// Copy a `<metadata>` element the way libvirt does (`xmlCopyNode` then
/// `virXMLNodeSanitizeNamespaces`): namespaces used inside but declared
/// outside move onto `<metadata>`, children without a namespace are
/// dropped, and only the first child of each namespace is kept.
pub(crate) fn copy_metadata(node: Node) -> XmlElement {
    let mut scope = Scope { frames: Vec::new() };
    let mut root_decls = Vec::new();
    let mut el = copy_element(node, &mut scope, &mut root_decls, true);
    el.ns_decls = root_decls;
    let mut seen: Vec<String> = Vec::new();
    el.children.retain(|c| match c {
        XmlNode::Element(e) => match &e.namespace {
            Some(ns) if !seen.contains(ns) => {
                seen.push(ns.clone());
                true
            }
            _ => false,
        },
        _ => false,
    });
    el
}

fn push_hex_ref(out: &mut String, c: char) {
    out.push_str(&format!("&#x{:X};", c as u32));
}

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (' '..'\u{80}').contains(&c) => out.push(c),
            c => push_hex_ref(out, c),
        }
    }
}

fn qname(prefix: &Option<String>, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{name}"),
        None => name.to_string(),
    }
}

const MAX_INDENT_LEVEL: usize = 30;

fn indent(out: &mut String, level: usize) {
    for _ in 0..level.min(MAX_INDENT_LEVEL) {
        out.push_str("  ");
    }
}

fn dump_element(out: &mut String, el: &XmlElement, level: usize, format: bool) {
    let q = qname(&el.prefix, &el.name);
    out.push('<');
    out.push_str(&q);
    for ns in &el.ns_decls {
        match &ns.prefix {
            Some(p) => {
                out.push_str(" xmlns:");
                out.push_str(p);
            }
            None => out.push_str(" xmlns"),
        }
        out.push_str("=\"");
        escape_attr(out, &ns.uri);
        out.push('"');
    }
    for a in &el.attrs {
        out.push(' ');
        out.push_str(&qname(&a.prefix, &a.name));
        out.push_str("=\"");
        escape_attr(out, &a.value);
        out.push('"');
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    let child_format = format
        && !el
            .children
            .iter()
            .any(|c| matches!(c, XmlNode::Text(_) | XmlNode::CData(_)));
    out.push('>');
    if child_format {
        out.push('\n');
    }
    for c in &el.children {
        if child_format && !matches!(c, XmlNode::Text(_) | XmlNode::CData(_)) {
            indent(out, level + 1);
        }
        match c {
            XmlNode::Element(e) => dump_element(out, e, level + 1, child_format),
            XmlNode::Text(t) => escape_text(out, t),
            XmlNode::CData(t) => {
                out.push_str("<![CDATA[");
                out.push_str(t);
                out.push_str("]]>");
            }
            XmlNode::Comment(t) => {
                out.push_str("<!--");
                out.push_str(t);
                out.push_str("-->");
            }
            XmlNode::Pi { target, data } => {
                out.push_str("<?");
                out.push_str(target);
                if let Some(d) = data {
                    out.push(' ');
                    out.push_str(d);
                }
                out.push_str("?>");
            }
        }
        if child_format {
            out.push('\n');
        }
    }
    if child_format {
        indent(out, level);
    }
    out.push_str("</");
    out.push_str(&q);
    out.push('>');
}

impl XmlElement {
    /// Serialize like libxml2's `xmlNodeDump(…, level, format=1)` with
    /// indentation on, without indenting the first line.
    pub fn to_xml(&self, level: usize) -> String {
        let mut out = String::new();
        dump_element(&mut out, self, level, true);
        out
    }

    /// The first child element in namespace `uri`.
    pub fn child_in_namespace(&self, uri: &str) -> Option<&XmlElement> {
        self.children.iter().find_map(|c| match c {
            XmlNode::Element(e) if e.namespace.as_deref() == Some(uri) => Some(e),
            _ => None,
        })
    }
}

/// Which metadata `virNetworkGetMetadata`/`virNetworkSetMetadata` address
/// (`virNetworkMetadataType`); discriminants are libvirt's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MetadataType {
    /// `<description>`
    Description = 0,
    /// `<title>`
    Title = 1,
    /// One namespaced element under `<metadata>`.
    Element = 2,
}

impl MetadataType {
    /// The type for libvirt's numeric value.
    pub fn from_code(code: i32) -> Option<MetadataType> {
        match code {
            0 => Some(MetadataType::Description),
            1 => Some(MetadataType::Title),
            2 => Some(MetadataType::Element),
            _ => None,
        }
    }
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '\u{b7}'))
}

fn strip_namespace(el: &mut XmlElement, uri: &str) {
    if el.namespace.as_deref() == Some(uri) {
        el.namespace = None;
        el.prefix = None;
    }
    for c in &mut el.children {
        if let XmlNode::Element(e) = c {
            strip_namespace(e, uri);
        }
    }
}

fn inject_namespace(el: &mut XmlElement, uri: &str, key: &str) {
    if el.namespace.is_none() {
        el.namespace = Some(uri.to_string());
        el.prefix = Some(key.to_string());
    }
    for c in &mut el.children {
        if let XmlNode::Element(e) = c {
            inject_namespace(e, uri, key);
        }
    }
}

fn missing_metadata() -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::NoNetworkMetadata,
        crate::ErrorDomain::Network,
        "Requested metadata element is not present",
    )
}

fn invalid_arg(msg: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::InvalidArg,
        crate::ErrorDomain::Network,
        msg,
    )
}

impl crate::NetworkDef {
    /// `virNetworkGetMetadata`: the description, the title, or the element
    /// in namespace `uri` under `<metadata>` (serialized without its
    /// namespace prefix, as libvirt returns it).
    pub fn metadata_get(
        &self,
        kind: MetadataType,
        uri: Option<&str>,
    ) -> Result<String, crate::Error> {
        let found = match kind {
            MetadataType::Description => self.description.clone(),
            MetadataType::Title => self.title.clone(),
            MetadataType::Element => {
                let uri = uri.ok_or_else(|| invalid_arg("metadata URI must not be NULL"))?;
                self.metadata.as_ref().and_then(|md| {
                    let mut el = md.child_in_namespace(uri)?.clone();
                    strip_namespace(&mut el, uri);
                    if let Some(i) = el.ns_decls.iter().position(|d| d.uri == uri) {
                        el.ns_decls.remove(i);
                    }
                    Some(el.to_xml(0))
                })
            }
        };
        found.ok_or_else(missing_metadata)
    }

    /// `virNetworkSetMetadata`: set or (with `None` or an empty string)
    /// clear the description or title; set (with `key` as the namespace
    /// prefix) or remove the element in namespace `uri` under `<metadata>`.
    pub fn metadata_set(
        &mut self,
        kind: MetadataType,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
    ) -> Result<(), crate::Error> {
        match kind {
            MetadataType::Description | MetadataType::Title => {
                if key.is_some() || uri.is_some() {
                    return Err(invalid_arg(
                        "key and uri must be NULL for title and description",
                    ));
                }
                if kind == MetadataType::Title && value.is_some_and(|v| v.contains('\n')) {
                    return Err(invalid_arg("metadata title can't contain newlines"));
                }
                let v = value.filter(|v| !v.is_empty()).map(str::to_string);
                if kind == MetadataType::Title {
                    self.title = v;
                } else {
                    self.description = v;
                }
                Ok(())
            }
            MetadataType::Element => {
                let uri = uri.ok_or_else(|| invalid_arg("metadata URI must not be NULL"))?;
                let new = match value {
                    Some(text) => {
                        let key =
                            key.ok_or_else(|| invalid_arg("metadata key must not be NULL"))?;
                        let doc = crate::xml::parse_document(text, "(metadata_xml)", None)?;
                        let mut scope = Scope { frames: Vec::new() };
                        let mut root_decls = Vec::new();
                        let mut el =
                            copy_element(doc.root_element(), &mut scope, &mut root_decls, true);
                        el.ns_decls = root_decls;
                        if !is_ncname(key) {
                            return Err(crate::Error::internal(
                                "failed to validate prefix for a new XML namespace",
                            ));
                        }
                        if el.ns_decls.iter().any(|d| d.prefix.as_deref() == Some(key)) {
                            return Err(crate::Error::internal(
                                "failed to create a new XML namespace",
                            ));
                        }
                        el.ns_decls.push(NsDecl {
                            prefix: Some(key.to_string()),
                            uri: uri.to_string(),
                        });
                        inject_namespace(&mut el, uri, key);
                        Some(el)
                    }
                    None => None,
                };
                // As libvirt: <metadata> is made when an element is set, and
                // stays, possibly empty, when the last one is removed.
                if new.is_none() && self.metadata.is_none() {
                    return Ok(());
                }
                let md = self.metadata.get_or_insert_with(|| XmlElement {
                    name: "metadata".to_string(),
                    ..XmlElement::default()
                });
                md.children.retain(
                    |c| !matches!(c, XmlNode::Element(e) if e.namespace.as_deref() == Some(uri)),
                );
                if let Some(el) = new {
                    md.children.push(XmlNode::Element(el));
                }
                Ok(())
            }
        }
    }
}
