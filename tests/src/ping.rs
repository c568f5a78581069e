//! ICMP reachability with busybox `ping`: a counted ping, and a continuous
//! one that can be stopped later to read how many packets were lost (for
//! proving zero loss across a daemon restart).

use std::net::IpAddr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::{self, Proc, SpawnOpts};

/// Sent and received counts of a ping run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingStats {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// Sequence numbers of the replies, in arrival order.
    pub reply_seqs: Vec<u32>,
}

impl PingStats {
    /// Requests without a reply.
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }

    /// Lost fraction, 0.0 ..= 1.0.
    pub fn loss(&self) -> f64 {
        if self.transmitted == 0 {
            1.0
        } else {
            f64::from(self.lost()) / f64::from(self.transmitted)
        }
    }

    /// The longest run of consecutive sequence numbers without a reply,
    /// between the first and the last reply.
    pub fn longest_gap(&self) -> u32 {
        let mut seqs = self.reply_seqs.clone();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.windows(2).map(|w| w[1] - w[0] - 1).max().unwrap_or(0)
    }

    /// Parses busybox (or iputils) ping output. Without a summary line (the
    /// program was killed, or failed to send), `transmitted` is the highest
    /// sequence number seen plus one, or `fallback_transmitted`.
    pub fn parse(output: &str, fallback_transmitted: u32) -> Result<PingStats> {
        let mut reply_seqs = Vec::new();
        let mut summary = None;
        for line in output.lines() {
            if line.contains(" bytes from ") {
                let seq = line
                    .split_whitespace()
                    .find_map(|w| {
                        w.strip_prefix("seq=")
                            .or_else(|| w.strip_prefix("icmp_seq="))
                    })
                    .and_then(|s| s.parse::<u32>().ok());
                if let Some(seq) = seq {
                    reply_seqs.push(seq);
                }
            } else if line.contains("packets transmitted") {
                let nums: Vec<u32> = line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|w| w.parse().ok())
                    .collect();
                match nums.as_slice() {
                    [tx, rx, ..] => summary = Some((*tx, *rx)),
                    _ => return Err(Error::parse("ping summary", line.to_string())),
                }
            }
        }
        let received = u32::try_from(reply_seqs.len()).unwrap_or(u32::MAX);
        let (transmitted, received) = summary.unwrap_or_else(|| {
            let seen = reply_seqs.iter().max().map_or(0, |m| m + 1);
            (seen.max(fallback_transmitted), received)
        });
        Ok(PingStats {
            transmitted,
            received,
            reply_seqs,
        })
    }
}

/// Sends `count` pings from `ns` to `target`, 0.2 s apart, waiting at most
/// `timeout` in all. Unreachable targets give stats with losses, not errors.
pub fn ping(ns: &Netns, target: IpAddr, count: u32, timeout: Duration) -> Result<PingStats> {
    let busybox = process::busybox()?;
    let deadline = timeout.as_secs().max(1).to_string();
    let out = ns.run_timeout(
        [
            busybox.to_string_lossy().as_ref(),
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-w",
            &deadline,
            "-W",
            "1",
            &target.to_string(),
        ],
        timeout + Duration::from_secs(5),
    )?;
    PingStats::parse(&format!("{}{}", out.stdout, out.stderr), count)
}

/// A ping that runs until stopped.
#[derive(Debug)]
pub struct ContinuousPing {
    proc: Proc,
    interval: Duration,
}

impl ContinuousPing {
    /// Starts pinging `target` from `ns` every `interval`.
    pub fn start(ns: &Netns, target: IpAddr, interval: Duration) -> Result<ContinuousPing> {
        let busybox = process::busybox()?;
        let proc = ns.spawn_with(
            [
                busybox.to_string_lossy().as_ref(),
                "ping",
                "-i",
                &format!("{:.3}", interval.as_secs_f64()),
                &target.to_string(),
            ],
            SpawnOpts {
                label: Some(format!("ping {target}")),
                ..Default::default()
            },
        )?;
        Ok(ContinuousPing { proc, interval })
    }

    /// Waits until `n` replies have arrived.
    pub fn wait_replies(&mut self, n: usize, timeout: Duration) -> Result<()> {
        let mut seen = 0;
        self.proc
            .wait_for_line(&format!("{n} ping replies"), timeout, |l| {
                if l.contains(" bytes from ") {
                    seen += 1;
                }
                seen >= n
            })
            .map(drop)
    }

    /// Statistics so far (from the replies printed; the number sent is
    /// estimated from the highest sequence number).
    pub fn so_far(&self) -> Result<PingStats> {
        PingStats::parse(&self.proc.output(), 0)
    }

    /// Stops pinging (SIGINT, so ping prints its own summary) and returns
    /// the statistics. So that the request in flight at that moment does not
    /// count as lost, it first waits (up to three intervals, at least 1 s)
    /// for the next reply and stops right after it.
    pub fn stop(mut self) -> Result<PingStats> {
        let from = self.proc.output_len();
        let _ = self.proc.wait_for_line_from(
            from,
            "the next ping reply",
            (self.interval * 3).max(Duration::from_secs(1)),
            &mut |l| l.contains(" bytes from "),
        );
        let out = self
            .proc
            .stop_with(Signal::SIGINT, Duration::from_secs(5))?;
        PingStats::parse(&format!("{}{}", out.stdout, out.stderr), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_busybox_output() {
        let out = "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n\
                   64 bytes from 10.0.0.1: seq=0 ttl=64 time=0.471 ms\n\
                   64 bytes from 10.0.0.1: seq=3 ttl=64 time=0.069 ms\n\
                   \n--- 10.0.0.1 ping statistics ---\n\
                   4 packets transmitted, 2 packets received, 50% packet loss\n";
        let s = PingStats::parse(out, 0).unwrap();
        assert_eq!((s.transmitted, s.received, s.lost()), (4, 2, 2));
        assert_eq!(s.longest_gap(), 2);
        assert!((s.loss() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn without_summary_counts_replies() {
        let out = "ping: sendto: Network is unreachable\n";
        let s = PingStats::parse(out, 3).unwrap();
        assert_eq!((s.transmitted, s.received), (3, 0));
    }
}
