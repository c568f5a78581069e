//! [`Nftables`]: the real [`Firewall`], running `nft -j -f -`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::libnft::LibNft;
use super::nft::{self, Listing};
use super::{Firewall, FirewallError, FirewallPlan, TABLE, TABLE_FAMILY};
use crate::process::run_with_timeout;

/// Runs nftables for the firewall: in-process through libnftables when
/// it is installed ([`Nftables::in_process`]), else the `nft` binary. One
/// instance per network namespace (nftables acts in the namespace the
/// context or process was created in).
#[derive(Debug, Clone)]
pub struct Nftables {
    nft: PathBuf,
    timeout: Duration,
    lib: Option<Arc<LibNft>>,
}

impl Default for Nftables {
    /// In-process when libnftables is available, else `nft` on PATH.
    fn default() -> Self {
        Nftables::in_process().unwrap_or_else(|| Nftables::new("nft"))
    }
}

impl Nftables {
    /// Uses the `nft` binary at `nft` (a name looked up on PATH, or a path).
    pub fn new(nft: impl Into<PathBuf>) -> Nftables {
        Nftables {
            nft: nft.into(),
            timeout: Duration::from_secs(30),
            lib: None,
        }
    }

    /// Uses libnftables in this process; `None` when it is not installed.
    pub fn in_process() -> Option<Nftables> {
        let lib = LibNft::load()?;
        Some(Nftables {
            nft: PathBuf::from("nft"),
            timeout: Duration::from_secs(30),
            lib: Some(Arc::new(lib)),
        })
    }

    /// Whether transactions run in-process.
    pub fn is_in_process(&self) -> bool {
        self.lib.is_some()
    }

    /// Changes how long one nft run may take (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Nftables {
        self.timeout = timeout;
        self
    }

    /// Runs one batch as a single transaction.
    pub fn run_batch(&self, batch: &Value, action: &str) -> Result<(), FirewallError> {
        let text = batch.to_string();
        log::debug!("nft -j -f - ({action}): {text}");
        if let Some(lib) = &self.lib {
            let out = lib.run(&text);
            if out.rc != 0 {
                return Err(FirewallError::Nft {
                    action: action.to_string(),
                    detail: nft_message(out.stderr.as_bytes()),
                });
            }
            return Ok(());
        }
        let mut cmd = Command::new(&self.nft);
        cmd.args(["-j", "-f", "-"]);
        let out = run_with_timeout(cmd, Some(text.as_bytes()), self.timeout)?;
        if !out.status.success() {
            return Err(FirewallError::Nft {
                action: action.to_string(),
                detail: nft_message(&out.stderr),
            });
        }
        Ok(())
    }

    /// Runs a read-only command and returns its JSON output.
    fn output(&self, command: &str, action: &str) -> Result<String, FirewallError> {
        if let Some(lib) = &self.lib {
            let out = lib.run(command);
            if out.rc != 0 {
                return Err(FirewallError::Nft {
                    action: action.to_string(),
                    detail: nft_message(out.stderr.as_bytes()),
                });
            }
            return Ok(out.stdout);
        }
        let mut cmd = Command::new(&self.nft);
        cmd.arg("-j").args(command.split_whitespace());
        let out = run_with_timeout(cmd, None, self.timeout)?;
        if !out.status.success() {
            return Err(FirewallError::Nft {
                action: action.to_string(),
                detail: nft_message(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Lists the table; `None` when it does not exist.
    fn list(&self) -> Result<Option<Listing>, FirewallError> {
        if let Some(lib) = &self.lib {
            let out = lib.run(&format!("list table {TABLE_FAMILY} {TABLE}"));
            if out.rc != 0 {
                let msg = nft_message(out.stderr.as_bytes());
                if msg.contains("No such file or directory") {
                    return Ok(None);
                }
                return Err(FirewallError::Nft {
                    action: "list the table".to_string(),
                    detail: msg,
                });
            }
            return nft::parse_listing(&out.stdout).map(Some);
        }
        let mut cmd = Command::new(&self.nft);
        cmd.args(["-j", "list", "table", TABLE_FAMILY, TABLE]);
        let out = run_with_timeout(cmd, None, self.timeout)?;
        if !out.status.success() {
            let msg = nft_message(&out.stderr);
            if msg.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(FirewallError::Nft {
                action: "list the table".to_string(),
                detail: msg,
            });
        }
        nft::parse_listing(&String::from_utf8_lossy(&out.stdout)).map(Some)
    }
}

/// nft's stderr, reduced to its error lines (it repeats the whole JSON
/// input around them otherwise).
fn nft_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error:"))
        .map(|l| l.split_once("Error:").map_or(l, |(_, m)| m).trim())
        .collect();
    if errors.is_empty() {
        text.trim().to_string()
    } else {
        let mut unique = errors.clone();
        unique.dedup();
        unique.join("; ")
    }
}

impl Firewall for Nftables {
    fn apply(&self, plan: &FirewallPlan) -> Result<(), FirewallError> {
        let batch = nft::apply_batch(plan)?;
        if batch["nftables"].as_array().is_some_and(|a| a.is_empty()) {
            return Ok(());
        }
        self.run_batch(
            &batch,
            &format!(
                "add rules of network '{}' (bridge {})",
                plan.network, plan.bridge
            ),
        )
    }

    fn remove(&self, network: &str, bridge: &str) -> Result<(), FirewallError> {
        let batch = nft::removal_batch(network, bridge)?;
        let action = format!("remove rules of network '{network}' (bridge {bridge})");
        match self.run_batch(&batch, &action) {
            Ok(()) => Ok(()),
            Err(first) => {
                log::debug!("{first}; removing by listing instead");
                let Some(listing) = self.list()? else {
                    return Ok(());
                };
                match nft::removal_from_listing(&listing, network, bridge) {
                    Some(batch) => self.run_batch(&batch, &action),
                    None => Ok(()),
                }
            }
        }
    }

    fn exists(&self, network: &str) -> Result<bool, FirewallError> {
        Ok(self.networks()?.iter().any(|n| n == network))
    }

    fn networks(&self) -> Result<Vec<String>, FirewallError> {
        // Only chain names are needed: listing chains prints no rules, so
        // nft resolves no protocol or service names (a restarted daemon
        // asks this once for all its networks).
        let text = self.output(&format!("list chains {TABLE_FAMILY}"), "list chains")?;
        Ok(nft::networks_in(&nft::parse_chains(&text, TABLE)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_errors_are_reduced_to_their_message() {
        let stderr = b"internal:0:0-0: Error: Could not process rule: Device or resource busy\n\n";
        assert_eq!(
            nft_message(stderr),
            "Could not process rule: Device or resource busy"
        );
        assert_eq!(nft_message(b"something odd\n"), "something odd");
    }
}
