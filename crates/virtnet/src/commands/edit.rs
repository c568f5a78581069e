//! `net-edit` and the editor helpers it shares with `net-desc --edit` and
//! `net-metadata --edit`: write the document to a temporary file, run
//! `$VISUAL`/`$EDITOR`/`vi` on it, read it back, and redefine; on failure
//! ask `Failed. Try again? [y,n,f,?]:` on a terminal.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use virtnet_rpc::protocol::{NetworkRet, NetworkXmlArgs, NonnullNetwork, Procedure, network_flags};

use super::network::get_xml;
use super::{opt_network, read_file};
use crate::conn::strerror;
use crate::shell::parse::ParsedCmd;
use crate::shell::{CmdResult, Ctl, Failed};
use crate::term::{RawStdin, stdin_is_tty};

/// Characters that may appear in `$EDITOR` and the file name without a
/// shell.
const ACCEPTED: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_.:@";

/// A temporary file removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn random_suffix(attempt: u32) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    let mut v = h.finish();
    let chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..6)
        .map(|_| {
            let c = chars[(v % chars.len() as u64) as usize] as char;
            v /= chars.len() as u64;
            c
        })
        .collect()
}

/// Writes `doc` to `$TMPDIR/virtnetXXXXXX.xml` (mode 0600).
pub fn write_temp(ctl: &mut Ctl<'_>, doc: &str) -> Result<TempFile, Failed> {
    let dir = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let mut last = None;
    for attempt in 0..100 {
        let path = PathBuf::from(format!("{dir}/virtnet{}.xml", random_suffix(attempt)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let tmp = TempFile(path);
                if let Err(e) = f.write_all(doc.as_bytes()) {
                    ctl.error(&format!(
                        "write: {}: failed to write to temporary file: {}",
                        tmp.path().display(),
                        strerror(&e)
                    ));
                    return Err(Failed);
                }
                return Ok(tmp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    let why = last.map(|e| strerror(&e)).unwrap_or_default();
    ctl.error(&format!(
        "g_mkstemp_full: failed to create temporary file: {why}"
    ));
    Err(Failed)
}

/// Runs the user's editor on `file`.
pub fn edit_file(ctl: &mut Ctl<'_>, file: &Path) -> CmdResult {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let fname = file.display().to_string();
    let plain = |s: &str| s.chars().all(|c| ACCEPTED.contains(c));
    let (mut command, shown) = if plain(&editor) {
        let mut c = Command::new(&editor);
        c.arg(file);
        (c, format!("{editor} {fname}"))
    } else {
        if !plain(&fname) {
            ctl.error(&format!(
                "{fname}: temporary filename contains shell meta or other unacceptable characters (is $TMPDIR wrong?)"
            ));
            return Err(Failed);
        }
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("{editor} {fname}"));
        (c, format!("sh -c {editor} {fname}"))
    };
    ctl.flush();
    match command.status() {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => {
            use std::os::unix::process::ExitStatusExt;
            let msg = match (st.code(), st.signal()) {
                (Some(code), _) => {
                    format!("internal error: Child process ({shown}) unexpected exit status {code}")
                }
                (None, Some(sig)) => {
                    format!("internal error: Child process ({shown}) unexpected fatal signal {sig}")
                }
                _ => format!("internal error: Child process ({shown}) unexpected exit"),
            };
            ctl.error(&msg);
            Err(Failed)
        }
        Err(e) => {
            let prog = if plain(&editor) {
                editor.as_str()
            } else {
                "sh"
            };
            ctl.error(&format!("Cannot find '{prog}' in path: {}", strerror(&e)));
            Err(Failed)
        }
    }
}

/// Reads the edited file back.
pub fn read_back(ctl: &mut Ctl<'_>, file: &Path) -> Result<String, Failed> {
    let name = file.display().to_string();
    read_file(&name).map_err(|_| {
        let e = std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut Vec::new()).map(|_| ()))
            .err()
            .map(|e| strerror(&e))
            .unwrap_or_default();
        ctl.error(&format!("{name}: failed to read temporary file: {e}"));
        Failed
    })
}

/// What the user chose after a failed redefinition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reedit {
    /// Edit again.
    Yes,
    /// Give up.
    No,
    /// Try to redefine the same text again.
    Force,
    /// No terminal to ask on.
    NoTty,
}

/// Asks `msg Try again? [y,n,f,?]:` on the terminal (virsh's
/// `vshAskReedit`), after reporting the pending error.
pub fn ask_reedit(ctl: &mut Ctl<'_>, msg: &str) -> Reedit {
    if !stdin_is_tty() {
        return Reedit::NoTty;
    }
    ctl.report_error();
    let Some(raw) = RawStdin::enable() else {
        return Reedit::NoTty;
    };
    let mut stdin = std::io::stdin();
    let answer = loop {
        ctl.print(&format!("\r{msg} Try again? [y,n,f,?]: "));
        ctl.flush();
        let mut b = [0u8; 1];
        let c = match stdin.read(&mut b) {
            Ok(1) => b[0].to_ascii_lowercase(),
            _ => break Reedit::No,
        };
        match c {
            b'?' => {
                for line in [
                    "",
                    "y - yes, start editor again",
                    "n - no, throw away my changes",
                    "f - force, try to redefine again",
                    "? - print this help",
                ] {
                    ctl.print(&format!("{line}\r\n"));
                }
            }
            b'y' => break Reedit::Yes,
            b'n' => break Reedit::No,
            b'f' => break Reedit::Force,
            _ => {}
        }
    };
    drop(raw);
    ctl.print("\r\n");
    answer
}

/// The edit loop of virsh's `virsh-edit.c`, generic over how the document
/// is fetched and stored. Returns `Ok(false)` when nothing changed.
pub fn edit_loop(
    ctl: &mut Ctl<'_>,
    get: &mut dyn FnMut(&mut Ctl<'_>) -> Result<String, Failed>,
    define: &mut dyn FnMut(&mut Ctl<'_>, &str) -> CmdResult,
    not_changed: &mut dyn FnMut(&mut Ctl<'_>),
) -> Result<bool, Failed> {
    let mut doc = get(ctl)?;
    let tmp = write_temp(ctl, &doc)?;
    'reedit: loop {
        edit_file(ctl, tmp.path())?;
        let edited = read_back(ctl, tmp.path())?;
        if edited == doc {
            not_changed(ctl);
            return Ok(false);
        }
        loop {
            // Did someone else change it meanwhile?
            let reread = get(ctl)?;
            let msg = if reread != doc {
                doc = reread;
                Some("The XML configuration was changed by another user.")
            } else if define(ctl, &edited).is_err() {
                Some("Failed.")
            } else {
                None
            };
            let Some(msg) = msg else {
                return Ok(true);
            };
            match ask_reedit(ctl, msg) {
                Reedit::Yes => continue 'reedit,
                Reedit::Force => continue,
                Reedit::No => return Err(Failed),
                Reedit::NoTty => {
                    // Without a terminal there is nobody to ask: report
                    // why the definition failed and fail.
                    ctl.error(msg);
                    return Err(Failed);
                }
            }
        }
    }
}

fn get_inactive_xml(ctl: &mut Ctl<'_>, net: &NonnullNetwork) -> Result<String, Failed> {
    match get_xml(ctl, net, network_flags::XML_INACTIVE) {
        Ok(x) => Ok(x),
        Err(Failed)
            if ctl
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("invalid argument")) =>
        {
            ctl.last_error = None;
            get_xml(ctl, net, 0)
        }
        Err(Failed) => Err(Failed),
    }
}

pub(super) fn cmd_net_edit(ctl: &mut Ctl<'_>, cmd: &ParsedCmd) -> CmdResult {
    let (net, _) = opt_network(ctl, cmd)?;
    let mut edited_name = String::new();
    let changed = edit_loop(
        ctl,
        &mut |ctl| get_inactive_xml(ctl, &net),
        &mut |ctl, xml| {
            let r: NetworkRet = ctl.call(
                Procedure::NetworkDefineXml,
                &NetworkXmlArgs {
                    xml: xml.to_owned(),
                },
            )?;
            edited_name = r.net.name;
            Ok(())
        },
        &mut |ctl| {
            ctl.print_extra(&format!(
                "Network {} XML configuration not changed.\n",
                net.name
            ));
        },
    )?;
    if changed {
        ctl.print_extra(&format!(
            "Network {edited_name} XML configuration edited.\n"
        ));
    }
    Ok(())
}
