//! virsh's tables (`vshTable`).
//!
//! Every cell is printed as `" " + cell`, padded to the column's width plus
//! two spaces except in the last column; the header is followed by a line
//! of `width + 3` dashes per column. Control characters (and a literal
//! `\x`) are shown as `\xNN` so that they cannot break the layout. In a
//! UTF-8 locale other characters count with their display width; in the C
//! locale every non-ASCII byte is shown as `\xff`, exactly as virsh shows
//! it (its hex escape of a sign-extended byte is truncated to 4 bytes).
//! With `quiet`, the header and dashes are left out and widths come from
//! the rows alone.

/// A table: header plus rows of the same number of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have as many cells as the header.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// Renders the table; `header` false leaves the header out (quiet mode).
    pub fn render(&self, header: bool, utf8: bool) -> String {
        let ncols = self.header.len();
        let encode = |s: &str| safe_encode(s, utf8);
        let head: Vec<(String, usize)> = self.header.iter().map(|c| encode(c)).collect();
        let rows: Vec<Vec<(String, usize)>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| encode(c)).collect())
            .collect();
        let mut widths = vec![0usize; ncols];
        if header {
            for (w, (_, cw)) in widths.iter_mut().zip(&head) {
                *w = (*w).max(*cw);
            }
        }
        for r in &rows {
            for (w, (_, cw)) in widths.iter_mut().zip(r) {
                *w = (*w).max(*cw);
            }
        }
        let mut out = String::new();
        let print_row = |out: &mut String, row: &[(String, usize)]| {
            for (i, (text, width)) in row.iter().enumerate() {
                out.push(' ');
                out.push_str(text);
                if i + 1 < row.len() {
                    for _ in 0..(widths[i] - width + 2) {
                        out.push(' ');
                    }
                }
            }
            out.push('\n');
        };
        if header {
            print_row(&mut out, &head);
            for w in &widths {
                for _ in 0..w + 3 {
                    out.push('-');
                }
            }
            out.push('\n');
        }
        for r in &rows {
            print_row(&mut out, r);
        }
        out
    }
}

/// True when the locale's character set is UTF-8 (`LC_ALL`, then
/// `LC_CTYPE`, then `LANG`).
pub fn locale_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                let v = v.to_ascii_lowercase();
                return v.contains("utf-8") || v.contains("utf8");
            }
        }
    }
    false
}

fn hex(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02x}"));
}

/// Escapes a cell as virsh does and returns it with its display width.
pub fn safe_encode(s: &str, utf8: bool) -> (String, usize) {
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut width = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b == b'\\' && bytes.get(i + 1) == Some(&b'x')) || b.is_ascii_control() {
            hex(&mut out, b);
            width += 4;
            i += 1;
            continue;
        }
        if b.is_ascii() {
            out.push(b as char);
            width += 1;
            i += 1;
            continue;
        }
        if !utf8 {
            // The C library prints the sign-extended byte ("ffffffNN")
            // into a 5-byte buffer: "\xff".
            out.push_str("\\xff");
            width += 4;
            i += 1;
            continue;
        }
        // `s` is valid UTF-8: take the whole character.
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        let len = ch.len_utf8();
        let w = char_width(ch);
        match w {
            Some(w) => {
                out.push(ch);
                width += w;
            }
            None => {
                for &cb in &bytes[i..i + len] {
                    hex(&mut out, cb);
                    width += 4;
                }
            }
        }
        i += len;
    }
    (out, width)
}

/// Display width of a printable character, `None` for non-printable ones
/// (a compact version of `wcwidth`: combining marks are 0, East Asian wide
/// and emoji ranges 2, others 1).
fn char_width(c: char) -> Option<usize> {
    let u = c as u32;
    if (0x80..0xa0).contains(&u) || u == 0x2028 || u == 0x2029 {
        return None;
    }
    let zero = [
        (0x0300, 0x036f),
        (0x0483, 0x0489),
        (0x0591, 0x05bd),
        (0x0610, 0x061a),
        (0x064b, 0x065f),
        (0x0e31, 0x0e31),
        (0x0e34, 0x0e3a),
        (0x1ab0, 0x1aff),
        (0x1dc0, 0x1dff),
        (0x200b, 0x200f),
        (0x20d0, 0x20ff),
        (0xfe00, 0xfe0f),
        (0xfe20, 0xfe2f),
    ];
    if zero.iter().any(|&(a, b)| (a..=b).contains(&u)) {
        return Some(0);
    }
    let wide = [
        (0x1100, 0x115f),
        (0x2e80, 0x303e),
        (0x3041, 0x33ff),
        (0x3400, 0x4dbf),
        (0x4e00, 0x9fff),
        (0xa000, 0xa4cf),
        (0xac00, 0xd7a3),
        (0xf900, 0xfaff),
        (0xfe30, 0xfe4f),
        (0xff00, 0xff60),
        (0xffe0, 0xffe6),
        (0x1f300, 0x1f64f),
        (0x1f900, 0x1f9ff),
        (0x20000, 0x2fffd),
        (0x30000, 0x3fffd),
    ];
    if wide.iter().any(|&(a, b)| (a..=b).contains(&u)) {
        return Some(2);
    }
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_network_list() {
        let t = Table::new(&["Name", "State", "Autostart", "Persistent"]);
        assert_eq!(
            t.render(true, false),
            " Name   State   Autostart   Persistent\n\
             ----------------------------------------\n"
        );
    }

    #[test]
    fn network_list_rows() {
        let mut t = Table::new(&["Name", "State", "Autostart", "Persistent"]);
        for (n, s, a, p) in [
            ("alpha", "inactive", "no", "yes"),
            ("beta", "inactive", "no", "yes"),
            ("gamma", "active", "no", "no"),
        ] {
            t.push(vec![n.into(), s.into(), a.into(), p.into()]);
        }
        assert_eq!(
            t.render(true, false),
            " Name    State      Autostart   Persistent\n\
             --------------------------------------------\n \
             alpha   inactive   no          yes\n \
             beta    inactive   no          yes\n \
             gamma   active     no          no\n"
        );
        // Quiet: no header, widths from the rows only.
        assert_eq!(
            t.render(false, false),
            " alpha   inactive   no   yes\n beta    inactive   no   yes\n gamma   active     no   no\n"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(safe_encode("a\tb", true), ("a\\x09b".into(), 6));
        assert_eq!(safe_encode("a\\xb", true), ("a\\x5cxb".into(), 7));
        assert_eq!(safe_encode("é", false), ("\\xff\\xff".into(), 8));
        assert_eq!(safe_encode("é", true), ("é".into(), 1));
        assert_eq!(safe_encode("日本", true), ("日本".into(), 4));
        let mut t = Table::new(&["UUID"]);
        t.push(vec!["x".into()]);
        assert_eq!(t.render(true, true), " UUID\n-------\n x\n");
    }
}
