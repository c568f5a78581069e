//! dnsmasq for virtnet networks: the conf file, dhcp hostsfile and
//! addnhosts file libvirt's network driver writes, and the DHCP lease
//! records its leases helper keeps.
//!
//! This crate is pure: it never touches the file system or processes. The
//! daemon writes what it returns and runs dnsmasq.
//!
//! # Generating the files
//!
//! ```
//! use virtnet_conf::NetworkDef;
//! use virtnet_dnsmasq::{DnsmasqConfig, Options};
//!
//! let def = NetworkDef::parse(
//!     "<network><name>default</name><bridge name='virbr0'/><forward mode='nat'/>\
//!      <ip address='192.168.122.1' prefix='24'><dhcp>\
//!      <range start='192.168.122.2' end='192.168.122.254'/>\
//!      <host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.10'/>\
//!      </dhcp></ip></network>",
//! )
//! .unwrap();
//! assert!(DnsmasqConfig::needs_dnsmasq(&def));
//! let opts = Options::new("/var/lib/libvirt/dnsmasq")
//!     .with_pid_file("/run/libvirt/network/default.pid");
//! let files = DnsmasqConfig::generate(&def, &opts).unwrap();
//! assert!(files.conf.contains("dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0\n"));
//! assert_eq!(files.conf_path, "/var/lib/libvirt/dnsmasq/default.conf");
//! assert_eq!(files.hostsfile.as_deref(), Some("52:54:00:00:00:01,192.168.122.10,vm1\n"));
//! assert_eq!(files.addnhosts, "");
//! ```
//!
//! [`DnsmasqConfig::generate`] (also [`generate`]) returns a
//! [`DnsmasqFiles`]: the conf text (byte-identical to libvirt's
//! `networkDnsmasqConfContents` for a dnsmasq ≥ 2.67), the hostsfile text
//! (`None` exactly when libvirt has no hostsfile content; the file is still
//! written, empty, see [`DnsmasqFiles::hostsfile_contents`]), the addnhosts
//! text, and the paths the conf names. [`Options`] carries the state
//! directory and the optional `pid-file=` line. File names are in
//! [`paths`]: `NAME.conf`, `NAME.hostsfile`, `NAME.addnhosts` (NAME
//! XML-escaped in the last two, as libvirt does), `BRIDGE.status`.
//!
//! [`DnsmasqConfig::command_line`] gives dnsmasq's arguments
//! (`--conf-file=… --leasefile-ro --dhcp-script=…`) and environment
//! (`VIR_BRIDGE_NAME`).
//!
//! # Whether and how to run dnsmasq
//!
//! [`needs_dnsmasq`] is libvirt's decision: a network whose bridge libvirt
//! manages, with at least one `<ip>`, unless DNS is disabled and no `<ip>`
//! serves DHCP or TFTP. For a running network, [`hosts_files`] regenerates
//! only the hostsfile and addnhosts (what a SIGHUP re-reads), and
//! [`DnsmasqConfig::plan_update`] compares old and new definitions and
//! answers [`UpdateAction::Reload`] (rewrite host files, SIGHUP),
//! [`UpdateAction::Restart`] (the conf changed), `Start`, `Stop` or
//! `Nothing`.
//!
//! # Injection safety
//!
//! libvirt writes names, domains, TXT values, TFTP roots, boot files and
//! `dnsmasq:option` values verbatim. A value that would make dnsmasq read
//! something other than what the definition says (a line break or other
//! control character, a comma in a one-field value, a `/` in a slash
//! delimited domain, a comment `#`, an unbalanced quote, whitespace in an
//! addnhosts name) is refused with [`Error::UnsafeValue`], naming the
//! network, the element and the value; nothing is written. Everything
//! libvirt writes correctly is written the same, byte for byte (a name with
//! quotes stays as it is in the header comment and is XML-escaped in the
//! paths).
//!
//! # Lease records
//!
//! [`lease`] reads and writes the `BRIDGE.status` JSON array, applies the
//! `add`/`old`/`del`/`init` calls dnsmasq makes to its `--dhcp-script`
//! ([`lease::LeaseEvent::from_script`] with the arguments and the
//! `DNSMASQ_*` environment, then [`lease::LeaseEvent::apply`] to the file
//! contents), prunes expired leases given the time, and lists leases the
//! way `net-dhcp-leases` reports them.

#![forbid(unsafe_code)]

pub mod conf;
pub mod error;
pub mod hosts;
pub mod json;
pub mod lease;
pub mod paths;
mod safety;

pub use conf::{
    DnsmasqCommand, DnsmasqConfig, DnsmasqFiles, Options, UpdateAction, UpdatePlan, command_line,
    generate, hosts_files, needs_dnsmasq,
};
pub use error::{Error, Result, UnsafeReason};
pub use hosts::{HostsFiles, lease_time};
pub use lease::{DhcpLease, Lease, LeaseAction, LeaseError, LeaseEvent, LeaseFile, LeaseUpdate};
