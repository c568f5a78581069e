//! A small logger for the daemon: one line per record on standard error,
//! with a UTC timestamp, the level and the module.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
            && (metadata.level() <= Level::Info || metadata.target().starts_with("virtnet"))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let line = format!(
            "{h:02}:{m:02}:{s:02}.{:03} {:<5} {}: {}\n",
            now.subsec_millis(),
            record.level(),
            record.target(),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger. `VIRTNET_LOG` (error, warn, info, debug, trace)
/// overrides `default`.
pub fn init(default: LevelFilter) {
    let level = std::env::var("VIRTNET_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
