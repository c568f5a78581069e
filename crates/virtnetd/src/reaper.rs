//! Deleting port devices in the background, many at a time.
//!
//! The kernel makes each link deletion wait for in-flight packet processing
//! to finish (about 20 ms here for a TAP); links deleted together share one
//! wait. A port's device is therefore handed to the reaper, which deletes
//! whatever has queued up in one request, while the port itself is released
//! at once. Whoever needs the devices gone (a network that stops, a port
//! asking for a name still being deleted) calls [`Reaper::flush`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use virtnet_host::netlink::NetlinkOps;

#[derive(Default)]
struct Queue {
    /// Devices waiting to be deleted.
    pending: Vec<String>,
    /// Devices being deleted right now.
    in_flight: Vec<String>,
}

/// The background deleter of port devices.
pub struct Reaper {
    netlink: Arc<dyn NetlinkOps + Send + Sync>,
    queue: Mutex<Queue>,
    /// Signalled when work arrives and when a batch is done.
    changed: Condvar,
}

impl Reaper {
    /// A reaper with its worker thread, which ends when the reaper is
    /// dropped. Devices a previous run left marked for deletion are deleted
    /// first.
    pub fn start(netlink: Arc<dyn NetlinkOps + Send + Sync>) -> Arc<Reaper> {
        if let Err(e) = netlink.delete_links(&[]) {
            log::warn!("cannot delete devices left marked for deletion: {e}");
        }
        let reaper = Arc::new(Reaper {
            netlink,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let weak = Arc::downgrade(&reaper);
        if let Err(e) = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || work(weak))
        {
            // Without the worker, every retire deletes at once (see retire).
            log::warn!("cannot start the device reaper thread: {e}");
        }
        reaper
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a device for deletion and returns at once.
    pub fn retire(&self, name: String) {
        let mut q = self.lock();
        if !q.pending.contains(&name) && !q.in_flight.contains(&name) {
            q.pending.push(name);
        }
        self.changed.notify_all();
    }

    /// Whether a device is queued or being deleted.
    pub fn is_retiring(&self, name: &str) -> bool {
        let q = self.lock();
        q.pending.iter().any(|n| n == name) || q.in_flight.iter().any(|n| n == name)
    }

    /// Deletes everything queued now and waits until no deletion is under
    /// way.
    pub fn flush(&self) {
        let batch = {
            let mut q = self.lock();
            let batch = std::mem::take(&mut q.pending);
            q.in_flight.extend(batch.iter().cloned());
            batch
        };
        self.delete(&batch);
        let mut q = self.lock();
        while !q.in_flight.is_empty() {
            q = self.changed.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Deletes one batch that was moved to `in_flight`, then takes it off.
    fn delete(&self, batch: &[String]) {
        if !batch.is_empty() {
            let t = std::time::Instant::now();
            match self.netlink.delete_links(batch) {
                Ok(()) => log::debug!(
                    "deleted {} port devices in {:.1} ms",
                    batch.len(),
                    t.elapsed().as_secs_f64() * 1000.0
                ),
                Err(e) => log::error!("cannot delete port devices {batch:?}: {e}"),
            }
        }
        let mut q = self.lock();
        q.in_flight.retain(|n| !batch.contains(n));
        self.changed.notify_all();
    }
}

fn work(reaper: Weak<Reaper>) {
    loop {
        let Some(r) = reaper.upgrade() else { return };
        let batch = {
            let mut q = r.lock();
            if q.pending.is_empty() {
                // Wake now and then to notice that the reaper is gone.
                let (guard, _) = r
                    .changed
                    .wait_timeout(q, std::time::Duration::from_millis(500))
                    .unwrap_or_else(|p| p.into_inner());
                q = guard;
            }
            let batch = std::mem::take(&mut q.pending);
            q.in_flight.extend(batch.iter().cloned());
            batch
        };
        r.delete(&batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtnet_host::fake::FakeNetlink;

    #[test]
    fn retired_devices_go_away_and_flush_waits_for_them() {
        let nl = Arc::new(FakeNetlink::new());
        for i in 0..5 {
            nl.add_existing(&format!("vnet{i}"), Some("tun"));
        }
        let reaper = Reaper::start(nl.clone());
        for i in 0..5 {
            reaper.retire(format!("vnet{i}"));
        }
        reaper.flush();
        for i in 0..5 {
            assert!(nl.link(&format!("vnet{i}")).unwrap().is_none());
            assert!(!reaper.is_retiring(&format!("vnet{i}")));
        }
        // Retiring something already gone is harmless.
        reaper.retire("vnet0".into());
        reaper.flush();
    }
}
