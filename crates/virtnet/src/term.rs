//! Small wrappers around the C library: terminals, SIGINT, local time.

use std::sync::atomic::{AtomicBool, Ordering};

/// True when standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// Standard input switched to raw mode; restored on drop.
pub struct RawStdin {
    saved: libc::termios,
}

impl RawStdin {
    /// Switches standard input to raw mode (one byte at a time, no echo).
    pub fn enable() -> Option<RawStdin> {
        // SAFETY: an all-zero termios is a valid value to be overwritten
        // by tcgetattr.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid, writable termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only modifies the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios derived from the current one.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &raw) } != 0 {
            return None;
        }
        Some(RawStdin { saved })
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enable`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &self.saved) };
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT caught into a flag while alive; the previous handler comes back
/// on drop.
pub struct SigintGuard {
    old: libc::sigaction,
}

impl SigintGuard {
    /// Installs the handler and clears the flag.
    pub fn install() -> Option<SigintGuard> {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // SAFETY: zeroed sigaction structs are valid starting values.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as *const () as usize;
        action.sa_flags = 0;
        // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: see above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers refer to valid sigaction structs; the
        // handler only stores to an atomic, which is async-signal-safe.
        if unsafe { libc::sigaction(libc::SIGINT, &action, &mut old) } != 0 {
            return None;
        }
        Some(SigintGuard { old })
    }

    /// True once SIGINT arrived.
    pub fn interrupted(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        // SAFETY: restores the handler saved by `install`.
        unsafe { libc::sigaction(libc::SIGINT, &self.old, std::ptr::null_mut()) };
    }
}

/// Formats seconds since the epoch in local time as
/// `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(secs: i64) -> String {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: zeroed tm is a valid output buffer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call;
    // localtime_r is the reentrant variant.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return utc_time(secs, None);
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Formats seconds since the epoch in UTC as `YYYY-MM-DD HH:MM:SS`, with
/// `.mmm+0000` appended when milliseconds are given (libvirt's
/// `virTimeStringNowRaw`).
pub fn utc_time(secs: i64, millis: Option<u32>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let base = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    match millis {
        Some(ms) => format!("{base}.{ms:03}+0000"),
        None => base,
    }
}

/// The current time as libvirt's event timestamps show it.
pub fn now_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    utc_time(now.as_secs() as i64, Some(now.subsec_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc() {
        assert_eq!(utc_time(0, None), "1970-01-01 00:00:00");
        assert_eq!(utc_time(951_782_400, None), "2000-02-29 00:00:00");
        assert_eq!(
            utc_time(1_700_000_000, Some(7)),
            "2023-11-14 22:13:20.007+0000"
        );
    }
}
