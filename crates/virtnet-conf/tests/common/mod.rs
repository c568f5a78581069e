//! Helpers shared by the data-driven tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Our own cases under `tests/data/conf` in the workspace.
pub fn own_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/conf")
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
