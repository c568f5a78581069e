//! dnsmasq's `--dhcp-script` for virtnet networks: records each DHCP lease
//! in `LEASES_DIR/BRIDGE.status` (the JSON format libvirt's leases helper
//! keeps) and, at dnsmasq's start (`init`), prints the known leases back to
//! it. dnsmasq runs with `--leasefile-ro`, so this file is the only lease
//! database, and it survives dnsmasq restarts.
//!
//! The directory comes from `VIRTNET_LEASES_DIR`, which virtnetd puts in
//! dnsmasq's environment (dnsmasq passes it on).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use virtnet_dnsmasq::lease::{LeaseEvent, MAX_STATUS_FILE_SIZE};

fn main() {
    if let Err(e) = run() {
        eprintln!("virtnet-leaseshelper: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: HashMap<String, String> = std::env::vars().collect();
    let dir = env
        .get("VIRTNET_LEASES_DIR")
        .cloned()
        .unwrap_or_else(|| "/var/lib/virtnet/dnsmasq".to_string());
    let event = LeaseEvent::from_script(&args, &env).map_err(|e| e.to_string())?;
    let path = event.status_file_path(&dir);
    let path = Path::new(&path);

    // Serialize concurrent helper runs on the directory of the status
    // files itself: a lock file beside them would be left behind when the
    // network's files are removed.
    let lock_path = path.parent().unwrap_or(Path::new("."));
    let lock = fs::File::open(lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    // SAFETY: flock on a valid, owned file descriptor; the lock is released
    // when `lock` is closed at the end of this function.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "cannot lock {}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        ));
    }

    let current = match fs::metadata(path) {
        Ok(m) if m.len() > MAX_STATUS_FILE_SIZE as u64 => {
            return Err(format!("{} is too large", path.display()));
        }
        Ok(_) => fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(_) => String::new(),
    };
    let update = event.apply(&current).map_err(|e| e.to_string())?;
    if let Some(text) = update.stdout {
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    if let Some(status) = update.status {
        let tmp = path.with_extension("status.new");
        fs::write(&tmp, status.as_bytes())
            .and_then(|()| fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
