//! Printing XML as virsh's `virshDumpXML` does, with `--xpath` and
//! `--wrap`.

use crate::shell::{CmdResult, Ctl, Failed};
use crate::xpath::{self, XPathError};

/// Prints `xml`, or the nodes `xpath` selects in it (one per line, or
/// wrapped in `<nodes>` with `wrap`).
pub fn dump_xml(
    ctl: &mut Ctl<'_>,
    xml: &str,
    url: &str,
    xpath: Option<&str>,
    wrap: bool,
) -> CmdResult {
    let Some(expr) = xpath else {
        ctl.print(xml);
        return Ok(());
    };
    match xpath::select(xml, expr, wrap) {
        Ok(pieces) => {
            for p in pieces {
                ctl.print(&p);
                ctl.print("\n");
            }
            Ok(())
        }
        Err(XPathError::Invalid { expr, pos }) => {
            // libxml2 reports a syntax error itself and virsh carries on
            // with an empty node set.
            let _ = url;
            ctl.eprint(&format!(
                "XPath error : Invalid expression\n{expr}\n{}^\n",
                " ".repeat(pos)
            ));
            if wrap {
                ctl.print("<nodes/>\n");
            }
            Ok(())
        }
        Err(XPathError::NotNodeSet(expr)) => {
            ctl.set_error(format!("internal error: Incorrect xpath '{expr}'"));
            Err(Failed)
        }
        Err(XPathError::Parse(msg)) => {
            ctl.set_error(msg);
            Err(Failed)
        }
    }
}
