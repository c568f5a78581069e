//! Helpers shared by the data-driven tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The libvirt 11.3.0 test corpus, if present.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("VIRTNET_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("../shared/conformance/libvirt-11.3.0"),
    };
    dir.is_dir().then_some(dir)
}

/// Our own cases under `tests/data/conf` in the workspace.
pub fn own_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/conf")
}

/// Read a corpus file, following libvirt's in-tree links: a file whose whole
/// content is a relative path to another file (as git stores symlinks).
pub fn read_linked(path: &Path) -> std::io::Result<String> {
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        let s = std::fs::read_to_string(&p)?;
        let t = s.trim();
        if !t.starts_with('<') && !t.contains('\n') && t.ends_with(".xml") {
            let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            p = base.join(t);
            continue;
        }
        return Ok(s);
    }
    Err(std::io::Error::other(format!(
        "too many links from {}",
        path.display()
    )))
}

/// A line-by-line diff for failure reports.
pub fn diff(expected: &str, got: &str) -> String {
    let mut out = String::new();
    let e: Vec<&str> = expected.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    for i in 0..e.len().max(g.len()) {
        let a = e.get(i).copied().unwrap_or("<none>");
        let b = g.get(i).copied().unwrap_or("<none>");
        if a != b {
            out.push_str(&format!(
                "    line {}:\n      want: {a}\n      got:  {b}\n",
                i + 1
            ));
        }
    }
    out
}
