//! `--xpath` for `net-dumpxml` and `net-port-dumpxml`: an XPath 1.0
//! evaluator for the expressions people use on network XML, and a
//! serializer that prints the selected nodes as libxml2's `xmlNodeDump`
//! does (double-quoted attributes, two-space indentation).
//!
//! Supported: location paths (absolute, relative, `//`), the axes `child`,
//! `descendant`, `descendant-or-self`, `parent`, `ancestor`,
//! `ancestor-or-self`, `following-sibling`, `preceding-sibling`, `self`,
//! `attribute` and their abbreviations (`@`, `.`, `..`), name tests, `*`,
//! `node()`, `text()`, `comment()`, unions (`|`) and predicates with
//! numbers, comparisons (`= != < <= > >=`), `and`, `or`, and the functions
//! `position()`, `last()`, `count()`, `name()`, `local-name()`,
//! `string()`, `contains()`, `starts-with()`, `not()`, `true()`,
//! `false()`, `number()`, `string-length()`, `normalize-space()`. An
//! expression whose value is not a node set is refused as virsh refuses
//! it (`Incorrect xpath`).

use roxmltree::{Document, Node, NodeType, ParsingOptions};

/// Why an expression gave no nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XPathError {
    /// A syntax error at byte `pos` (libxml2 prints it and goes on).
    Invalid {
        /// The expression.
        expr: String,
        /// Where parsing stopped.
        pos: usize,
    },
    /// The expression's value is not a node set.
    NotNodeSet(String),
    /// The document itself does not parse.
    Parse(String),
}

#[derive(Debug, Clone)]
enum Expr {
    Path(Path),
    Union(Box<Expr>, Box<Expr>),
    Filter(Box<Expr>, Vec<Expr>, Vec<Step>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Arith(char, Box<Expr>, Box<Expr>),
    Literal(String),
    Number(f64),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
struct Path {
    absolute: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    Parent,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
    Itself,
    Attribute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Name(String),
    Any,
    Node,
    Text,
    Comment,
}

#[derive(Debug, Clone)]
struct Step {
    axis: Axis,
    test: Test,
    preds: Vec<Expr>,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

type PResult<T> = Result<T, usize>;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.pos..].starts_with(t.as_bytes()) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<String> {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            let ok = c.is_ascii_alphanumeric()
                || c == b'_'
                || c >= 0x80
                || (self.pos > start && matches!(c, b'-' | b'.'));
            if !ok {
                break;
            }
            self.pos += 1;
        }
        // A QName: prefix:local (but not an axis "::").
        if self.pos > start
            && self.s.get(self.pos) == Some(&b':')
            && self.s.get(self.pos + 1) != Some(&b':')
            && self
                .s
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'*')
        {
            self.pos += 1;
            if self.s.get(self.pos) == Some(&b'*') {
                self.pos += 1;
            } else {
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric()
                        || matches!(self.s[self.pos], b'_' | b'-' | b'.'))
                {
                    self.pos += 1;
                }
            }
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.or_expr()
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        let mut l = self.and_expr()?;
        while self.keyword("or") {
            let r = self.and_expr()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn keyword(&mut self, k: &str) -> bool {
        self.ws();
        let save = self.pos;
        if self.s[self.pos..].starts_with(k.as_bytes()) {
            let after = self.s.get(self.pos + k.len()).copied();
            if !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                self.pos += k.len();
                return true;
            }
        }
        self.pos = save;
        false
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mut l = self.cmp_expr()?;
        while self.keyword("and") {
            let r = self.cmp_expr()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn cmp_expr(&mut self) -> PResult<Expr> {
        let mut l = self.add_expr()?;
        loop {
            let op = if self.eat("!=") {
                CmpOp::Ne
            } else if self.eat("<=") {
                CmpOp::Le
            } else if self.eat(">=") {
                CmpOp::Ge
            } else if self.eat("=") {
                CmpOp::Eq
            } else if self.eat("<") {
                CmpOp::Lt
            } else if self.eat(">") {
                CmpOp::Gt
            } else {
                return Ok(l);
            };
            let r = self.add_expr()?;
            l = Expr::Cmp(op, Box::new(l), Box::new(r));
        }
    }

    fn add_expr(&mut self) -> PResult<Expr> {
        let mut l = self.mul_expr()?;
        loop {
            let op = if self.eat("+") {
                '+'
            } else if self.peek() == Some(b'-') {
                self.pos += 1;
                '-'
            } else {
                return Ok(l);
            };
            let r = self.mul_expr()?;
            l = Expr::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn mul_expr(&mut self) -> PResult<Expr> {
        let mut l = self.unary()?;
        loop {
            let op = if self.keyword("div") {
                '/'
            } else if self.keyword("mod") {
                '%'
            } else if self.peek() == Some(b'*') {
                self.pos += 1;
                '*'
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Expr::Arith(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        let mut l = self.path_expr()?;
        while self.eat("|") {
            let r = self.path_expr()?;
            l = Expr::Union(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn path_expr(&mut self) -> PResult<Expr> {
        match self.peek() {
            Some(b'"') | Some(b'\'') => {
                let q = self.s[self.pos];
                let start = self.pos + 1;
                let end = self.s[start..]
                    .iter()
                    .position(|&c| c == q)
                    .ok_or(self.s.len())?;
                self.pos = start + end + 1;
                return Ok(Expr::Literal(
                    String::from_utf8_lossy(&self.s[start..start + end]).into_owned(),
                ));
            }
            Some(c)
                if c.is_ascii_digit()
                    || (c == b'.' && self.s.get(self.pos + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_digit() || self.s[self.pos] == b'.')
                {
                    self.pos += 1;
                }
                let t = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                return t.parse().map(Expr::Number).map_err(|_| start);
            }
            Some(b'(') => {
                self.pos += 1;
                let e = self.expr()?;
                if !self.eat(")") {
                    return Err(self.pos);
                }
                return self.filter_rest(e);
            }
            _ => {}
        }
        // A function call?
        let save = self.pos;
        if let Some(n) = self.name() {
            let is_node_test = matches!(n.as_str(), "node" | "text" | "comment");
            if !is_node_test && self.peek() == Some(b'(') {
                self.pos += 1;
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.pos);
                        }
                    }
                }
                return self.filter_rest(Expr::Call(n, args));
            }
        }
        self.pos = save;
        Ok(Expr::Path(self.location_path()?))
    }

    fn filter_rest(&mut self, e: Expr) -> PResult<Expr> {
        let mut preds = Vec::new();
        while self.eat("[") {
            preds.push(self.expr()?);
            if !self.eat("]") {
                return Err(self.pos);
            }
        }
        let mut steps = Vec::new();
        loop {
            if self.eat("//") {
                steps.push(Step {
                    axis: Axis::DescendantOrSelf,
                    test: Test::Node,
                    preds: Vec::new(),
                });
                steps.push(self.step()?);
            } else if self.eat("/") {
                steps.push(self.step()?);
            } else {
                break;
            }
        }
        if preds.is_empty() && steps.is_empty() {
            Ok(e)
        } else {
            Ok(Expr::Filter(Box::new(e), preds, steps))
        }
    }

    fn location_path(&mut self) -> PResult<Path> {
        let mut steps = Vec::new();
        let absolute;
        if self.eat("//") {
            absolute = true;
            steps.push(Step {
                axis: Axis::DescendantOrSelf,
                test: Test::Node,
                preds: Vec::new(),
            });
            steps.push(self.step()?);
        } else if self.eat("/") {
            absolute = true;
            let c = self.peek();
            if c.is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'*' | b'@' | b'.' | b'_'))
            {
                steps.push(self.step()?);
            } else {
                return Ok(Path { absolute, steps });
            }
        } else {
            absolute = false;
            steps.push(self.step()?);
        }
        loop {
            if self.eat("//") {
                steps.push(Step {
                    axis: Axis::DescendantOrSelf,
                    test: Test::Node,
                    preds: Vec::new(),
                });
                steps.push(self.step()?);
            } else if self.eat("/") {
                steps.push(self.step()?);
            } else {
                break;
            }
        }
        Ok(Path { absolute, steps })
    }

    fn step(&mut self) -> PResult<Step> {
        if self.eat("..") {
            return Ok(Step {
                axis: Axis::Parent,
                test: Test::Node,
                preds: Vec::new(),
            });
        }
        if self.eat(".") {
            return Ok(Step {
                axis: Axis::Itself,
                test: Test::Node,
                preds: Vec::new(),
            });
        }
        let mut axis = Axis::Child;
        if self.eat("@") {
            axis = Axis::Attribute;
        } else {
            let save = self.pos;
            if let Some(n) = self.name() {
                if self.eat("::") {
                    axis = match n.as_str() {
                        "child" => Axis::Child,
                        "descendant" => Axis::Descendant,
                        "descendant-or-self" => Axis::DescendantOrSelf,
                        "parent" => Axis::Parent,
                        "ancestor" => Axis::Ancestor,
                        "ancestor-or-self" => Axis::AncestorOrSelf,
                        "following-sibling" => Axis::FollowingSibling,
                        "preceding-sibling" => Axis::PrecedingSibling,
                        "self" => Axis::Itself,
                        "attribute" => Axis::Attribute,
                        _ => return Err(save),
                    };
                } else {
                    self.pos = save;
                }
            }
        }
        let test = if self.eat("*") {
            Test::Any
        } else {
            let start = self.pos;
            let Some(n) = self.name() else {
                return Err(self.pos);
            };
            let kind = if self.peek() == Some(b'(') {
                let t = match n.as_str() {
                    "node" => Test::Node,
                    "text" => Test::Text,
                    "comment" => Test::Comment,
                    _ => return Err(start),
                };
                self.pos += 1;
                if !self.eat(")") {
                    return Err(self.pos);
                }
                t
            } else {
                Test::Name(n)
            };
            if let Test::Name(n) = &kind {
                if n.contains(':') {
                    // No namespace prefixes are registered for virsh's
                    // queries.
                    return Err(start);
                }
            }
            kind
        };
        let mut preds = Vec::new();
        while self.eat("[") {
            preds.push(self.expr()?);
            if !self.eat("]") {
                return Err(self.pos);
            }
        }
        Ok(Step { axis, test, preds })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XNode<'a, 'i> {
    Node(Node<'a, 'i>),
    Attr(Node<'a, 'i>, usize),
}

impl<'a, 'i> XNode<'a, 'i> {
    fn order(&self) -> (usize, usize) {
        match self {
            XNode::Node(n) => (n.id().get_usize(), 0),
            XNode::Attr(n, i) => (n.id().get_usize(), i + 1),
        }
    }

    fn string_value(&self) -> String {
        match self {
            XNode::Attr(n, i) => n
                .attributes()
                .nth(*i)
                .map(|a| a.value().to_owned())
                .unwrap_or_default(),
            XNode::Node(n) => match n.node_type() {
                NodeType::Text | NodeType::Comment => n.text().unwrap_or("").to_owned(),
                _ => n
                    .descendants()
                    .filter(|d| d.is_text())
                    .filter_map(|d| d.text())
                    .collect(),
            },
        }
    }

    fn name(&self) -> String {
        match self {
            XNode::Attr(n, i) => n
                .attributes()
                .nth(*i)
                .map(|a| a.name().to_owned())
                .unwrap_or_default(),
            XNode::Node(n) if n.is_element() => qname(*n),
            XNode::Node(_) => String::new(),
        }
    }
}

fn qname(n: Node) -> String {
    let local = n.tag_name().name();
    match n.tag_name().namespace().and_then(|ns| n.lookup_prefix(ns)) {
        Some(p) if !p.is_empty() => format!("{p}:{local}"),
        _ => local.to_owned(),
    }
}

#[derive(Debug, Clone)]
enum Value<'a, 'i> {
    Nodes(Vec<XNode<'a, 'i>>),
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Value<'_, '_> {
    fn to_bool(&self) -> bool {
        match self {
            Value::Nodes(n) => !n.is_empty(),
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Bool(b) => *b,
        }
    }

    fn to_str(&self) -> String {
        match self {
            Value::Nodes(n) => n.first().map(XNode::string_value).unwrap_or_default(),
            Value::Str(s) => s.clone(),
            Value::Num(n) => fmt_num(*n),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn to_num(&self) -> f64 {
        match self {
            Value::Num(n) => *n,
            Value::Bool(b) => f64::from(u8::from(*b)),
            other => other.to_str().trim().parse().unwrap_or(f64::NAN),
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Whitespace-only text is dropped, as virsh parses with blanks off.
fn visible(n: &Node) -> bool {
    match n.node_type() {
        NodeType::Text => !n.text().unwrap_or("").trim().is_empty(),
        NodeType::Element | NodeType::Comment | NodeType::PI => true,
        NodeType::Root => true,
    }
}

fn children<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(visible)
}

fn axis_nodes<'a, 'i>(x: XNode<'a, 'i>, axis: Axis) -> Vec<XNode<'a, 'i>> {
    let XNode::Node(n) = x else {
        return match axis {
            Axis::Parent | Axis::Ancestor | Axis::AncestorOrSelf => {
                let XNode::Attr(owner, _) = x else {
                    return Vec::new();
                };
                let mut v = Vec::new();
                if axis == Axis::AncestorOrSelf {
                    v.push(x);
                }
                v.push(XNode::Node(owner));
                if axis != Axis::Parent {
                    v.extend(owner.ancestors().skip(1).map(XNode::Node));
                }
                v
            }
            Axis::Itself => vec![x],
            _ => Vec::new(),
        };
    };
    match axis {
        Axis::Child => children(n).map(XNode::Node).collect(),
        Axis::Descendant => n
            .descendants()
            .skip(1)
            .filter(visible)
            .map(XNode::Node)
            .collect(),
        Axis::DescendantOrSelf => n.descendants().filter(visible).map(XNode::Node).collect(),
        Axis::Parent => n.parent().map(XNode::Node).into_iter().collect(),
        Axis::Ancestor => n.ancestors().skip(1).map(XNode::Node).collect(),
        Axis::AncestorOrSelf => n.ancestors().map(XNode::Node).collect(),
        Axis::FollowingSibling => n
            .next_siblings()
            .skip(1)
            .filter(visible)
            .map(XNode::Node)
            .collect(),
        Axis::PrecedingSibling => n
            .prev_siblings()
            .skip(1)
            .filter(visible)
            .map(XNode::Node)
            .collect(),
        Axis::Itself => vec![x],
        Axis::Attribute => {
            if n.is_element() {
                (0..n.attributes().len())
                    .map(|i| XNode::Attr(n, i))
                    .collect()
            } else {
                Vec::new()
            }
        }
    }
}

fn test_ok(x: &XNode, axis: Axis, test: &Test) -> bool {
    match (x, test) {
        (XNode::Attr(..), Test::Any | Test::Node) => true,
        (XNode::Attr(..), Test::Name(name)) => x.name() == *name,
        (XNode::Attr(..), _) => false,
        (XNode::Node(n), Test::Node) => {
            let _ = axis;
            let _ = n;
            true
        }
        (XNode::Node(n), Test::Any) => n.is_element(),
        (XNode::Node(n), Test::Name(name)) => n.is_element() && qname(*n) == *name,
        (XNode::Node(n), Test::Text) => n.is_text(),
        (XNode::Node(n), Test::Comment) => n.node_type() == NodeType::Comment,
    }
}

struct Ctx<'a, 'i> {
    node: XNode<'a, 'i>,
    pos: usize,
    size: usize,
    root: Node<'a, 'i>,
}

fn sort_dedup(v: &mut Vec<XNode>) {
    v.sort_by_key(XNode::order);
    v.dedup();
}

fn apply_steps<'a, 'i>(
    mut cur: Vec<XNode<'a, 'i>>,
    steps: &[Step],
    root: Node<'a, 'i>,
) -> Result<Vec<XNode<'a, 'i>>, ()> {
    for step in steps {
        let mut next = Vec::new();
        for x in &cur {
            let mut cands: Vec<XNode> = axis_nodes(*x, step.axis)
                .into_iter()
                .filter(|c| test_ok(c, step.axis, &step.test))
                .collect();
            // Reverse axes count positions from the context node outwards.
            let reverse = matches!(
                step.axis,
                Axis::Ancestor | Axis::AncestorOrSelf | Axis::PrecedingSibling | Axis::Parent
            );
            if !reverse {
                cands.sort_by_key(XNode::order);
            }
            for p in &step.preds {
                cands = filter_pred(cands, p, root)?;
            }
            next.extend(cands);
        }
        sort_dedup(&mut next);
        cur = next;
    }
    Ok(cur)
}

fn filter_pred<'a, 'i>(
    nodes: Vec<XNode<'a, 'i>>,
    pred: &Expr,
    root: Node<'a, 'i>,
) -> Result<Vec<XNode<'a, 'i>>, ()> {
    let size = nodes.len();
    let mut out = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        let ctx = Ctx {
            node: n,
            pos: i + 1,
            size,
            root,
        };
        let keep = match eval(pred, &ctx)? {
            Value::Num(v) => v == (i + 1) as f64,
            other => other.to_bool(),
        };
        if keep {
            out.push(n);
        }
    }
    Ok(out)
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    // Node sets compare if any member's string value does.
    if let Value::Nodes(na) = a {
        return na
            .iter()
            .any(|n| compare(op, &Value::Str(n.string_value()), b));
    }
    if let Value::Nodes(nb) = b {
        return nb
            .iter()
            .any(|n| compare(op, a, &Value::Str(n.string_value())));
    }
    match op {
        CmpOp::Eq | CmpOp::Ne => {
            let eq = match (a, b) {
                (Value::Bool(_), _) | (_, Value::Bool(_)) => a.to_bool() == b.to_bool(),
                (Value::Num(_), _) | (_, Value::Num(_)) => a.to_num() == b.to_num(),
                _ => a.to_str() == b.to_str(),
            };
            if op == CmpOp::Eq { eq } else { !eq }
        }
        CmpOp::Lt => a.to_num() < b.to_num(),
        CmpOp::Le => a.to_num() <= b.to_num(),
        CmpOp::Gt => a.to_num() > b.to_num(),
        CmpOp::Ge => a.to_num() >= b.to_num(),
    }
}

fn eval<'a, 'i>(e: &Expr, ctx: &Ctx<'a, 'i>) -> Result<Value<'a, 'i>, ()> {
    Ok(match e {
        Expr::Path(p) => {
            let start = if p.absolute {
                vec![XNode::Node(ctx.root)]
            } else {
                vec![ctx.node]
            };
            Value::Nodes(apply_steps(start, &p.steps, ctx.root)?)
        }
        Expr::Union(a, b) => {
            let (Value::Nodes(mut x), Value::Nodes(y)) = (eval(a, ctx)?, eval(b, ctx)?) else {
                return Err(());
            };
            x.extend(y);
            sort_dedup(&mut x);
            Value::Nodes(x)
        }
        Expr::Filter(inner, preds, steps) => {
            let Value::Nodes(mut nodes) = eval(inner, ctx)? else {
                return Err(());
            };
            for p in preds {
                nodes = filter_pred(nodes, p, ctx.root)?;
            }
            Value::Nodes(apply_steps(nodes, steps, ctx.root)?)
        }
        Expr::Or(a, b) => Value::Bool(eval(a, ctx)?.to_bool() || eval(b, ctx)?.to_bool()),
        Expr::And(a, b) => Value::Bool(eval(a, ctx)?.to_bool() && eval(b, ctx)?.to_bool()),
        Expr::Cmp(op, a, b) => Value::Bool(compare(*op, &eval(a, ctx)?, &eval(b, ctx)?)),
        Expr::Neg(a) => Value::Num(-eval(a, ctx)?.to_num()),
        Expr::Arith(op, a, b) => {
            let (x, y) = (eval(a, ctx)?.to_num(), eval(b, ctx)?.to_num());
            Value::Num(match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => x % y,
            })
        }
        Expr::Literal(s) => Value::Str(s.clone()),
        Expr::Number(n) => Value::Num(*n),
        Expr::Call(name, args) => {
            let arg = |i: usize| -> Result<Value<'a, 'i>, ()> {
                match args.get(i) {
                    Some(a) => eval(a, ctx),
                    None => Ok(Value::Nodes(vec![ctx.node])),
                }
            };
            match (name.as_str(), args.len()) {
                ("position", 0) => Value::Num(ctx.pos as f64),
                ("last", 0) => Value::Num(ctx.size as f64),
                ("count", 1) => match arg(0)? {
                    Value::Nodes(n) => Value::Num(n.len() as f64),
                    _ => return Err(()),
                },
                ("name" | "local-name", 0 | 1) => {
                    let Value::Nodes(n) = arg(0)? else {
                        return Err(());
                    };
                    let full = n.first().map(XNode::name).unwrap_or_default();
                    if name == "local-name" {
                        Value::Str(full.rsplit(':').next().unwrap_or("").to_owned())
                    } else {
                        Value::Str(full)
                    }
                }
                ("string", 0 | 1) => Value::Str(arg(0)?.to_str()),
                ("number", 0 | 1) => Value::Num(arg(0)?.to_num()),
                ("string-length", 0 | 1) => Value::Num(arg(0)?.to_str().chars().count() as f64),
                ("normalize-space", 0 | 1) => Value::Str(
                    arg(0)?
                        .to_str()
                        .split_ascii_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                ("contains", 2) => Value::Bool(arg(0)?.to_str().contains(&arg(1)?.to_str())),
                ("starts-with", 2) => Value::Bool(arg(0)?.to_str().starts_with(&arg(1)?.to_str())),
                ("not", 1) => Value::Bool(!arg(0)?.to_bool()),
                ("true", 0) => Value::Bool(true),
                ("false", 0) => Value::Bool(false),
                _ => return Err(()),
            }
        }
    })
}

fn escape_attr(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\t' => o.push_str("&#9;"),
            c => o.push(c),
        }
    }
    o
}

fn escape_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\r' => o.push_str("&#13;"),
            c => o.push(c),
        }
    }
    o
}

/// Namespace declarations made on `n` itself.
fn ns_decls(n: Node) -> Vec<(Option<String>, String)> {
    let parent_ns: Vec<(Option<String>, String)> = n
        .parent_element()
        .map(|p| {
            p.namespaces()
                .map(|ns| (ns.name().map(str::to_owned), ns.uri().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    n.namespaces()
        .map(|ns| (ns.name().map(str::to_owned), ns.uri().to_owned()))
        .filter(|d| !parent_ns.contains(d) && d.0.as_deref() != Some("xml"))
        .collect()
}

fn dump_element(out: &mut String, n: Node, level: usize, format: bool) {
    let name = qname(n);
    out.push('<');
    out.push_str(&name);
    for (prefix, uri) in ns_decls(n) {
        match prefix {
            Some(p) => out.push_str(&format!(" xmlns:{p}=\"{}\"", escape_attr(&uri))),
            None => out.push_str(&format!(" xmlns=\"{}\"", escape_attr(&uri))),
        }
    }
    for a in n.attributes() {
        let aname = match a.namespace().and_then(|ns| n.lookup_prefix(ns)) {
            Some(p) if !p.is_empty() => format!("{p}:{}", a.name()),
            _ => a.name().to_owned(),
        };
        out.push_str(&format!(" {aname}=\"{}\"", escape_attr(a.value())));
    }
    let kids: Vec<Node> = children(n).collect();
    if kids.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let child_format = format && !kids.iter().any(|k| k.is_text());
    if child_format {
        out.push('\n');
    }
    for k in &kids {
        if child_format {
            out.push_str(&"  ".repeat(level + 1));
        }
        dump_node(out, *k, level + 1, child_format);
        if child_format {
            out.push('\n');
        }
    }
    if child_format {
        out.push_str(&"  ".repeat(level));
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

fn dump_node(out: &mut String, n: Node, level: usize, format: bool) {
    match n.node_type() {
        NodeType::Element => dump_element(out, n, level, format),
        NodeType::Text => out.push_str(&escape_text(n.text().unwrap_or(""))),
        NodeType::Comment => {
            out.push_str("<!--");
            out.push_str(n.text().unwrap_or(""));
            out.push_str("-->");
        }
        NodeType::PI => {
            if let Some(pi) = n.pi() {
                out.push_str("<?");
                out.push_str(pi.target);
                if let Some(v) = pi.value {
                    out.push(' ');
                    out.push_str(v);
                }
                out.push_str("?>");
            }
        }
        NodeType::Root => {
            for k in children(n) {
                dump_node(out, k, level, format);
            }
        }
    }
}

fn dump_x(x: &XNode) -> String {
    let mut out = String::new();
    match x {
        XNode::Node(n) => dump_node(&mut out, *n, 0, true),
        XNode::Attr(n, i) => {
            if let Some(a) = n.attributes().nth(*i) {
                out.push_str(&format!(" {}=\"{}\"", a.name(), escape_attr(a.value())));
            }
        }
    }
    out
}

fn dump_wrapped(nodes: &[XNode]) -> String {
    let format = !nodes
        .iter()
        .any(|x| matches!(x, XNode::Node(n) if n.is_text()));
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut parts: Vec<(bool, String)> = Vec::new();
    for x in nodes {
        match x {
            XNode::Attr(n, i) => {
                if let Some(a) = n.attributes().nth(*i) {
                    attrs.retain(|(k, _)| k != a.name());
                    attrs.push((a.name().to_owned(), a.value().to_owned()));
                }
            }
            XNode::Node(n) if n.is_text() => {
                let t = escape_text(n.text().unwrap_or(""));
                match parts.last_mut() {
                    Some((true, s)) => s.push_str(&t),
                    _ => parts.push((true, t)),
                }
            }
            XNode::Node(n) => {
                let mut s = String::new();
                dump_node(&mut s, *n, 1, format);
                parts.push((false, s));
            }
        }
    }
    let mut out = String::from("<nodes");
    for (k, v) in &attrs {
        out.push_str(&format!(" {k}=\"{}\"", escape_attr(v)));
    }
    if parts.is_empty() {
        out.push_str("/>");
        return out;
    }
    out.push('>');
    if format {
        out.push('\n');
    }
    for (_, p) in &parts {
        if format {
            out.push_str("  ");
            out.push_str(p);
            out.push('\n');
        } else {
            out.push_str(p);
        }
    }
    out.push_str("</nodes>");
    out
}

/// Evaluates `expr` over `xml` and returns what virsh prints for it: one
/// string per selected node, or a single `<nodes>` element with `wrap`.
pub fn select(xml: &str, expr: &str, wrap: bool) -> Result<Vec<String>, XPathError> {
    let opts = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(xml, opts)
        .map_err(|e| XPathError::Parse(format!("XML error: {e}")))?;
    let mut p = Parser {
        s: expr.as_bytes(),
        pos: 0,
    };
    let parsed = p.expr();
    let parsed = match parsed {
        Ok(e) if p.peek().is_none() => e,
        Ok(_) => {
            return Err(XPathError::Invalid {
                expr: expr.to_owned(),
                pos: p.pos,
            });
        }
        Err(pos) => {
            return Err(XPathError::Invalid {
                expr: expr.to_owned(),
                pos: pos.min(expr.len()),
            });
        }
    };
    let root = doc.root();
    let ctx = Ctx {
        node: XNode::Node(root),
        pos: 1,
        size: 1,
        root,
    };
    let value = eval(&parsed, &ctx).map_err(|()| XPathError::Invalid {
        expr: expr.to_owned(),
        pos: 0,
    })?;
    let Value::Nodes(nodes) = value else {
        return Err(XPathError::NotNodeSet(expr.to_owned()));
    };
    if wrap {
        // Elements inside <nodes> are formatted one level deeper.
        return Ok(vec![dump_wrapped(&nodes)]);
    }
    Ok(nodes.iter().map(dump_x).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "<network>\n  <name>alpha</name>\n  <uuid>11111111-2222-3333-4444-555555555555</uuid>\n  <forward mode='nat'/>\n  <ip address='192.168.51.1' netmask='255.255.255.0'>\n    <dhcp>\n      <range start='192.168.51.2' end='192.168.51.254'/>\n      <host mac='52:54:00:00:00:01' name='g1' ip='192.168.51.10'/>\n    </dhcp>\n  </ip>\n</network>\n";

    #[test]
    fn element_dump_like_libxml2() {
        assert_eq!(
            select(NET, "//ip", false).unwrap(),
            vec![
                "<ip address=\"192.168.51.1\" netmask=\"255.255.255.0\">\n  <dhcp>\n    <range start=\"192.168.51.2\" end=\"192.168.51.254\"/>\n    <host mac=\"52:54:00:00:00:01\" name=\"g1\" ip=\"192.168.51.10\"/>\n  </dhcp>\n</ip>"
            ]
        );
    }

    #[test]
    fn attributes_and_text() {
        assert_eq!(
            select(NET, "//ip/@address", false).unwrap(),
            vec![" address=\"192.168.51.1\""]
        );
        assert_eq!(
            select(NET, "//ip/@address", true).unwrap(),
            vec!["<nodes address=\"192.168.51.1\"/>"]
        );
        assert_eq!(select(NET, "//name/text()", false).unwrap(), vec!["alpha"]);
        assert_eq!(
            select(NET, "//nosuch", false).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(select(NET, "//nosuch", true).unwrap(), vec!["<nodes/>"]);
        assert_eq!(
            select(NET, "/network/name | //forward", true).unwrap(),
            vec!["<nodes>\n  <name>alpha</name>\n  <forward mode=\"nat\"/>\n</nodes>"]
        );
    }

    #[test]
    fn predicates() {
        assert_eq!(
            select(NET, "//host[@name='g1']/@ip", false).unwrap(),
            vec![" ip=\"192.168.51.10\""]
        );
        assert_eq!(
            select(NET, "/network/*[2]", false).unwrap(),
            vec!["<uuid>11111111-2222-3333-4444-555555555555</uuid>"]
        );
        assert_eq!(
            select(NET, "/network/*[last()]/@address", false).unwrap(),
            vec![" address=\"192.168.51.1\""]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            select(NET, "count(//ip)", false),
            Err(XPathError::NotNodeSet("count(//ip)".into()))
        );
        assert!(matches!(
            select(NET, "//[", false),
            Err(XPathError::Invalid { pos: 2, .. })
        ));
    }
}
