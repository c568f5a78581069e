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
