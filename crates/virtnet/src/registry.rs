//! Every command virtnet knows, grouped as `help` lists them.
//!
//! A command is one [`CmdDef`] here (name, help, options in virsh's
//! order) plus one arm in [`crate::commands::dispatch`].

use crate::shell::opts::{CmdDef, CmdGroup, Connect, OptDef};
use crate::shell::parse::CommandSet;

const NETWORK: OptDef = OptDef::data("network", "network name or uuid");
const FILE_NET: OptDef = OptDef::data("file", "file containing an XML network description");
const VALIDATE: OptDef = OptDef::flag("validate", "validate the XML against the schema");
const XPATH: OptDef =
    OptDef::string("xpath", "xpath expression to filter the XML document").only_named();
const WRAP: OptDef = OptDef::flag("wrap", "wrap xpath results in an common root element");

const fn cmd(
    name: &'static str,
    help: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
) -> CmdDef {
    CmdDef {
        name,
        help,
        desc,
        opts,
        connect: Connect::Needed,
        hidden: false,
        blank_line: true,
    }
}

/// The network commands, in virsh's listing order.
pub const NETWORK_COMMANDS: &[CmdDef] = &[
    cmd(
        "net-autostart",
        "autostart a network",
        "Configure a network to be automatically started at boot.",
        &[NETWORK, OptDef::flag("disable", "disable autostarting")],
    ),
    cmd(
        "net-create",
        "create a network from an XML file",
        "Create a network.",
        &[FILE_NET, VALIDATE],
    ),
    cmd(
        "net-define",
        "define an inactive persistent virtual network or modify an existing persistent one from an XML file",
        "Define or modify a persistent virtual network.",
        &[FILE_NET, VALIDATE],
    ),
    cmd(
        "net-desc",
        "show or set network's description or title",
        "Allows setting or modifying the description or title of a network.",
        &[
            NETWORK,
            OptDef::flag("live", "modify/get running state"),
            OptDef::flag("config", "modify/get persistent configuration"),
            OptDef::flag("current", "modify/get current state configuration"),
            OptDef::flag("title", "modify/get the title instead of description"),
            OptDef::flag("edit", "open an editor to modify the description"),
            OptDef::argv("new-desc", "message"),
        ],
    ),
    cmd(
        "net-destroy",
        "destroy (stop) a network",
        "Forcefully stop a given network.",
        &[NETWORK],
    ),
    cmd(
        "net-dhcp-leases",
        "print lease info for a given network",
        "Print lease info for a given network",
        &[NETWORK, OptDef::string("mac", "MAC address")],
    ),
    cmd(
        "net-dumpxml",
        "network information in XML",
        "Output the network information as an XML dump to stdout.",
        &[
            NETWORK,
            OptDef::flag("inactive", "show inactive defined XML"),
            XPATH,
            WRAP,
        ],
    ),
    cmd(
        "net-edit",
        "edit XML configuration for a network",
        "Edit the XML configuration for a network.",
        &[NETWORK],
    ),
    cmd(
        "net-event",
        "Network Events",
        "List event types, or wait for network events to occur",
        &[
            OptDef::string("network", "filter by network name or uuid"),
            OptDef::string("event", "which event type to wait for"),
            OptDef::flag(
                "loop",
                "loop until timeout or interrupt, rather than one-shot",
            ),
            OptDef::int("timeout", "timeout seconds"),
            OptDef::flag("list", "list valid event types"),
            OptDef::flag("timestamp", "show timestamp for each printed event"),
        ],
    ),
    cmd(
        "net-info",
        "network information",
        "Returns basic information about the network",
        &[NETWORK],
    ),
    cmd(
        "net-list",
        "list networks",
        "Returns list of networks.",
        &[
            OptDef::flag("inactive", "list inactive networks"),
            OptDef::flag("all", "list inactive & active networks"),
            OptDef::flag("persistent", "list persistent networks"),
            OptDef::flag("transient", "list transient networks"),
            OptDef::flag("autostart", "list networks with autostart enabled"),
            OptDef::flag("no-autostart", "list networks with autostart disabled"),
            OptDef::flag("uuid", "list uuid's only"),
            OptDef::flag("name", "list network names only"),
            OptDef::flag("table", "list table (default)"),
        ],
    ),
    cmd(
        "net-metadata",
        "show or set network's custom XML metadata",
        "Shows or modifies the XML metadata of a network.",
        &[
            NETWORK,
            OptDef::data("uri", "URI of the namespace"),
            OptDef::flag("live", "modify/get running state"),
            OptDef::flag("config", "modify/get persistent configuration"),
            OptDef::flag("current", "modify/get current state configuration"),
            OptDef::flag("edit", "use an editor to change the metadata"),
            OptDef::string("key", "key to be used as a namespace identifier"),
            OptDef::string("set", "new metadata to set"),
            OptDef::flag("remove", "remove the metadata corresponding to an uri"),
        ],
    ),
    cmd(
        "net-name",
        "convert a network UUID to network name",
        "",
        &[OptDef::data("network", "network uuid")],
    ),
    cmd(
        "net-start",
        "start a (previously defined) inactive network",
        "Start a network.",
        &[NETWORK],
    ),
    cmd(
        "net-undefine",
        "undefine a persistent network",
        "Undefine the configuration for a persistent network.",
        &[NETWORK],
    ),
    cmd(
        "net-update",
        "update parts of an existing network's configuration",
        "",
        &[
            NETWORK,
            OptDef::data(
                "command",
                "type of update (add-first, add-last (add), delete, or modify)",
            ),
            OptDef::data(
                "section",
                "which section of network configuration to update",
            ),
            OptDef::data(
                "xml",
                "name of file containing xml (or, if it starts with '<', the complete xml element itself) to add/modify, or to be matched for search",
            ),
            OptDef::int("parent-index", "which parent object to search through"),
            OptDef::flag("config", "affect next network startup"),
            OptDef::flag("live", "affect running network"),
            OptDef::flag("current", "affect current state of network"),
        ],
    ),
    cmd(
        "net-uuid",
        "convert a network name to network UUID",
        "",
        &[OptDef::data("network", "network name")],
    ),
    cmd(
        "net-port-list",
        "list network ports",
        "Returns list of network ports.",
        &[
            NETWORK,
            OptDef::flag("uuid", "list uuid's only"),
            OptDef::flag("table", "list table (default)"),
        ],
    ),
    cmd(
        "net-port-create",
        "create a network port from an XML file",
        "Create a network port.",
        &[
            NETWORK,
            OptDef::data("file", "file containing an XML network port description"),
            VALIDATE,
            QEMU_ARGS,
        ],
    ),
    cmd(
        "net-port-dumpxml",
        "network port information in XML",
        "Output the network port information as an XML dump to stdout.",
        &[NETWORK, OptDef::data("port", "port UUID"), XPATH, WRAP],
    ),
    cmd(
        "net-port-delete",
        "delete the specified network port",
        "Delete the specified network port.",
        &[NETWORK, OptDef::data("port", "port UUID")],
    ),
];

const DOMAIN: OptDef = OptDef::data("domain", "domain name, id or uuid");
const QEMU_ARGS: OptDef = OptDef::flag(
    "qemu-args",
    "also print the QEMU arguments that use the new port (virtnet)",
);

/// virsh's domain interface commands: a domain is the owner named in the
/// network ports it holds.
pub const DOMAIN_COMMANDS: &[CmdDef] = &[
    cmd(
        "attach-interface",
        "attach network interface",
        "Attach new network interface.",
        &[
            DOMAIN,
            OptDef::data("type", "network interface type"),
            OptDef::data("source", "source of network interface"),
            OptDef::string("target", "target network name"),
            OptDef::string("mac", "MAC address"),
            OptDef::string("script", "script used to bridge network interface"),
            OptDef::string("model", "model type"),
            OptDef::string("alias", "custom alias name of interface device"),
            OptDef::string("inbound", "control domain's incoming traffics"),
            OptDef::string("outbound", "control domain's outgoing traffics"),
            OptDef::flag("persistent", "make live change persistent"),
            OptDef::flag("config", "affect next boot"),
            OptDef::flag("live", "affect running domain"),
            OptDef::flag("current", "affect current domain"),
            OptDef::flag(
                "print-xml",
                "print XML document rather than attach the interface",
            ),
            OptDef::flag(
                "managed",
                "libvirt will automatically detach/attach the device from/to host",
            ),
            OptDef::string("source-mode", "mode attribute of <source/> element"),
            QEMU_ARGS,
        ],
    ),
    cmd(
        "detach-interface",
        "detach network interface",
        "Detach network interface.",
        &[
            DOMAIN,
            OptDef::data("type", "network interface type"),
            OptDef::string("mac", "MAC address"),
            OptDef::flag("persistent", "make live change persistent"),
            OptDef::flag("config", "affect next boot"),
            OptDef::flag("live", "affect running domain"),
            OptDef::flag("current", "affect current domain"),
            OptDef::flag(
                "print-xml",
                "print XML document rather than detach the interface",
            ),
        ],
    ),
    cmd(
        "domifaddr",
        "Get network interfaces' addresses for a running domain",
        "Get network interfaces' addresses for a running domain",
        &[
            DOMAIN,
            OptDef::string("interface", "network interface name"),
            OptDef::flag("full", "always display names and MACs of interfaces"),
            OptDef::string("source", "address source: 'lease', 'agent', or 'arp'"),
        ],
    ),
    cmd(
        "domiflist",
        "list all domain virtual interfaces",
        "Get the summary of virtual interfaces for a domain.",
        &[
            DOMAIN,
            OptDef::flag("inactive", "get inactive rather than running configuration"),
        ],
    ),
    cmd(
        "qemu-args",
        "print the QEMU arguments that use a network port",
        "Prints one line of QEMU command-line arguments giving a guest a NIC on the\n    port's host device: the TAP (by name), the macvtap (an fd opened on its\n    character device) or the PCI device.",
        &[
            NETWORK,
            OptDef::data("port", "port UUID"),
            OptDef::string("id", "the netdev id (default net0)").only_named(),
        ],
    ),
];

/// virtnet's own commands.
pub const VIRTNET_COMMANDS: &[CmdDef] = &[
    CmdDef {
        name: "help",
        help: "print help",
        desc: "Prints global help, command specific help, or help for a\n    group of related commands",
        opts: &[OptDef::string(
            "command",
            "Prints global help, command specific help, or help for a group of related commands",
        )],
        connect: Connect::Never,
        hidden: false,
        blank_line: true,
    },
    CmdDef {
        name: "net-lint",
        help: "check a network (or network port) XML file offline and print it canonically",
        desc: "Parses FILE without a daemon (with --validate, also checks it as net-define would). Prints the canonical XML (as net-dumpxml\n    formats it), or with --dnsmasq-conf / --dnsmasq-hostsfile the dnsmasq files the\n    network would get, and exits 0; prints the error and exits 1 otherwise.",
        opts: &[
            OptDef::data(
                "file",
                "file containing an XML network (or, with --port, network port) description",
            ),
            OptDef::flag("inactive", "format as net-dumpxml --inactive does"),
            OptDef::flag(
                "validate",
                "also apply the checks made when a network is defined",
            ),
            OptDef::flag("port", "the file is a networkport description"),
            OptDef::flag("dnsmasq-conf", "print the dnsmasq configuration file"),
            OptDef::flag("dnsmasq-hostsfile", "print the dnsmasq dhcp hostsfile"),
            OptDef::string(
                "state-dir",
                "dnsmasq state directory (default /var/lib/virtnet/dnsmasq)",
            )
            .only_named(),
        ],
        connect: Connect::Never,
        hidden: false,
        blank_line: false,
    },
    CmdDef {
        name: "doctor",
        help: "check what virtnet needs on this host and what is wrong",
        desc: "Checks the daemon, the programs and kernel features virtnet uses, and every\n    active network (bridge, dnsmasq, firewall, routes), and says how to fix what\n    is wrong. Exits 0 when nothing failed, 1 otherwise.",
        opts: &[],
        connect: Connect::Own,
        hidden: false,
        blank_line: false,
    },
    CmdDef {
        name: "qemu-bridge-helper",
        help: "give QEMU a TAP on a virtnet network's bridge (-netdev bridge,helper=…)",
        desc: "QEMU's bridge helper protocol: creates a port on the active virtnet network\n    whose bridge is BR, opens its TAP and sends the descriptor over the Unix\n    socket FD. Users other than root need an 'allow' rule in\n    /etc/virtnet/qemu-bridge-helper.conf. Also runs as 'qemu-bridge-helper'.",
        opts: &[
            OptDef::flag("use-vnet", "open the TAP with a virtio-net header"),
            OptDef::string("br", "the bridge").only_named(),
            OptDef::string("fd", "the Unix socket to send the TAP's descriptor on").only_named(),
        ],
        connect: Connect::Own,
        hidden: false,
        blank_line: false,
    },
    CmdDef {
        name: "tunnel",
        help: "connect standard input and output to the local virtnetd (remote access)",
        desc: "The far end of 'virtnet -c virtnet+ssh://HOST/system': copies between standard\n    input and output and virtnetd's socket until either side closes. With a URI\n    (as libvirt's virt-ssh-helper takes one) the socket is the one it names.\n    Also runs as 'virt-ssh-helper [-r] URI'.",
        opts: &[
            OptDef::string("uri", "connection URI naming the local daemon"),
            OptDef::string(
                "socket",
                "virtnetd's socket (default /run/virtnet/virtnetd-sock)",
            )
            .only_named(),
            OptDef::flag("readonly", "use the read-only socket"),
        ],
        connect: Connect::Own,
        hidden: false,
        blank_line: false,
    },
    CmdDef {
        name: "quit",
        help: "quit this interactive terminal",
        desc: "",
        opts: &[],
        connect: Connect::Never,
        hidden: false,
        blank_line: true,
    },
    CmdDef {
        name: "exit",
        help: "quit this interactive terminal",
        desc: "",
        opts: &[],
        connect: Connect::Never,
        hidden: false,
        blank_line: true,
    },
];

/// All groups, in `help` order.
pub const GROUPS: &[CmdGroup] = &[
    CmdGroup {
        name: "Networking",
        keyword: "network",
        commands: NETWORK_COMMANDS,
    },
    CmdGroup {
        name: "Domain Interfaces",
        keyword: "domain",
        commands: DOMAIN_COMMANDS,
    },
    CmdGroup {
        name: "Virtnet itself",
        keyword: "virtnet",
        commands: VIRTNET_COMMANDS,
    },
];

/// The command table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registry;

impl Registry {
    /// The group with this name or keyword.
    pub fn group(&self, name: &str) -> Option<&'static CmdGroup> {
        GROUPS.iter().find(|g| g.name == name || g.keyword == name)
    }
}

impl CommandSet for Registry {
    fn find(&self, name: &str) -> Option<&'static CmdDef> {
        GROUPS
            .iter()
            .flat_map(|g| g.commands.iter())
            .find(|c| c.name == name)
    }
}
