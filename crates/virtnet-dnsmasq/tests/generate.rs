//! Generation API: options, dnsmasq need, host-file refresh, update plans,
//! command line, and refusal of unsafe values in definitions that did not
//! come from XML (e.g. built by net-update).

use virtnet_conf::{DnsHostDef, DnsTxtDef, NetworkDef, TristateBool};
use virtnet_dnsmasq::{
    DnsmasqConfig, Error, Options, UnsafeReason, UpdateAction, hosts_files, needs_dnsmasq,
};

const NAT: &str = "<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>\
    <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>\
    <range start='192.168.122.2' end='192.168.122.254'/>\
    <host mac='00:16:3e:77:e2:ed' name='a.example.com' ip='192.168.122.10'/>\
    </dhcp></ip></network>";

fn def(xml: &str) -> NetworkDef {
    NetworkDef::parse(xml).expect("test XML parses")
}

#[test]
fn pid_file_line_and_paths() {
    let opts =
        Options::new("/var/lib/libvirt/dnsmasq").with_pid_file("/run/libvirt/network/default.pid");
    let f = DnsmasqConfig::generate(&def(NAT), &opts).unwrap();
    assert!(f.conf.contains(
        "strict-order\npid-file=/run/libvirt/network/default.pid\nexcept-interface=lo\n"
    ));
    assert_eq!(f.conf_path, "/var/lib/libvirt/dnsmasq/default.conf");
    assert_eq!(
        f.hostsfile_path,
        "/var/lib/libvirt/dnsmasq/default.hostsfile"
    );
    assert_eq!(
        f.addnhosts_path,
        "/var/lib/libvirt/dnsmasq/default.addnhosts"
    );
    assert!(f.dhcp && f.dns);
    assert_eq!(Options::default(), Options::new("/var/lib/libvirt/dnsmasq"));
    let bad = Options::new("/var/lib/libvirt/dnsmasq").with_pid_file("/run/x.pid\nport=0");
    assert!(matches!(
        DnsmasqConfig::generate(&def(NAT), &bad),
        Err(Error::UnsafeValue {
            element: "pid file",
            reason: UnsafeReason::LineBreak,
            ..
        })
    ));
}

#[test]
fn which_networks_need_dnsmasq() {
    assert!(needs_dnsmasq(&def(NAT)));
    // No <ip> at all.
    assert!(!needs_dnsmasq(&def(
        "<network><name>n</name><bridge name='b0'/></network>"
    )));
    // DNS only (no DHCP) still runs dnsmasq.
    assert!(needs_dnsmasq(&def(
        "<network><name>n</name><bridge name='b0'/><ip address='10.0.0.1' prefix='24'/></network>"
    )));
    // DNS disabled and nothing served.
    assert!(!needs_dnsmasq(&def(
        "<network><name>n</name><bridge name='b0'/><dns enable='no'/>\
         <ip address='10.0.0.1' prefix='24'/></network>"
    )));
    // DNS disabled but TFTP served.
    assert!(needs_dnsmasq(&def(
        "<network><name>n</name><bridge name='b0'/><dns enable='no'/>\
         <ip address='10.0.0.1' prefix='24'><tftp root='/srv'/></ip></network>"
    )));
    // Host bridges have no dnsmasq of libvirt's.
    assert!(!needs_dnsmasq(&def(
        "<network><name>n</name><forward mode='bridge'/><bridge name='br0'/></network>"
    )));
}

#[test]
fn host_files_alone_match_full_generation() {
    let mut d = def(NAT);
    d.dns.hosts.push(DnsHostDef {
        ip: "192.168.122.1".parse().unwrap(),
        names: vec!["gw".into()],
    });
    let full = DnsmasqConfig::generate(&d, &Options::default()).unwrap();
    let hosts = hosts_files(&d).unwrap();
    assert_eq!(hosts, full.hosts());
    assert_eq!(hosts.addnhosts, "192.168.122.1\tgw\t\n");
    assert_eq!(
        hosts.hostsfile_contents(),
        "00:16:3e:77:e2:ed,192.168.122.10,a.example.com\n"
    );
}

#[test]
fn update_plans() {
    let opts = Options::default();
    let old = def(NAT);
    let plan = |new: &NetworkDef| DnsmasqConfig::plan_update(&old, new, &opts).unwrap().action;

    assert_eq!(plan(&old), UpdateAction::Nothing);

    // A static host added where a range exists: hostsfile only.
    let mut new = old.clone();
    let mut h = new.ips[0].hosts[0].clone();
    h.mac = Some("00:16:3e:00:00:01".into());
    h.name = Some("b".into());
    h.ip = Some("192.168.122.11".parse().unwrap());
    new.ips[0].hosts.push(h);
    assert_eq!(plan(&new), UpdateAction::Reload);

    // A DNS host: addnhosts only.
    let mut new = old.clone();
    new.dns.hosts.push(DnsHostDef {
        ip: "192.168.122.1".parse().unwrap(),
        names: vec!["gw".into()],
    });
    assert_eq!(plan(&new), UpdateAction::Reload);

    // A TXT record: the conf file.
    let mut new = old.clone();
    new.dns.txts.push(DnsTxtDef {
        name: "t".into(),
        value: "v".into(),
    });
    assert_eq!(plan(&new), UpdateAction::Restart);

    // The last static host of a range-less <ip> removed: DHCP goes away.
    let static_only = def(
        "<network><name>s</name><bridge name='virbr1'/><ip address='10.1.0.1' prefix='24'><dhcp>\
         <host mac='52:54:00:00:00:01' ip='10.1.0.5'/></dhcp></ip></network>",
    );
    let mut none = static_only.clone();
    none.ips[0].hosts.clear();
    let p = DnsmasqConfig::plan_update(&static_only, &none, &opts).unwrap();
    assert_eq!(p.action, UpdateAction::Restart);
    assert!(!p.files.unwrap().dhcp);

    // DNS switched off with nothing else served: stop; and back: start.
    let mut off = none.clone();
    off.dns.enable = TristateBool::No;
    let p = DnsmasqConfig::plan_update(&none, &off, &opts).unwrap();
    assert_eq!((p.action, p.files), (UpdateAction::Stop, None));
    assert_eq!(
        DnsmasqConfig::plan_update(&off, &none, &opts)
            .unwrap()
            .action,
        UpdateAction::Start
    );
    assert_eq!(
        DnsmasqConfig::plan_update(&off, &off, &opts)
            .unwrap()
            .action,
        UpdateAction::Nothing
    );
}

#[test]
fn command_line() {
    let c = DnsmasqConfig::command_line(
        &def(NAT),
        "/var/lib/libvirt/dnsmasq/default.conf",
        "/usr/libexec/virtnet-leases",
    )
    .unwrap();
    assert_eq!(
        c.args,
        [
            "--conf-file=/var/lib/libvirt/dnsmasq/default.conf",
            "--leasefile-ro",
            "--dhcp-script=/usr/libexec/virtnet-leases"
        ]
    );
    assert_eq!(
        c.env,
        [("VIR_BRIDGE_NAME".to_string(), "virbr0".to_string())]
    );
}

#[test]
fn missing_bridge_is_an_error() {
    let mut d = def(NAT);
    d.bridge = None;
    assert_eq!(
        DnsmasqConfig::generate(&d, &Options::default())
            .unwrap_err()
            .to_string(),
        "internal error: network 'default' has no bridge name"
    );
}

#[test]
fn unsafe_values_from_outside_xml() {
    let gen_err = |d: &NetworkDef| DnsmasqConfig::generate(d, &Options::default()).unwrap_err();

    let mut d = def(NAT);
    d.dns.txts.push(DnsTxtDef {
        name: "t".into(),
        value: "a\tb".into(),
    });
    assert_eq!(
        gen_err(&d).to_string(),
        "unsupported configuration: DNS TXT record value 'a\\tb' of network 'default' \
         cannot be written to the dnsmasq configuration: it contains a control character"
    );

    let mut d = def(NAT);
    d.dns.txts.push(DnsTxtDef {
        name: "t".into(),
        value: "x\ndhcp-script=/bin/sh".into(),
    });
    let e = gen_err(&d);
    assert!(matches!(
        &e,
        Error::UnsafeValue { network, element: "DNS TXT record value", value, reason: UnsafeReason::LineBreak }
            if network == "default" && value == "x\ndhcp-script=/bin/sh"
    ));
    let conf_err: virtnet_conf::Error = e.into();
    assert_eq!(conf_err.kind(), virtnet_conf::ErrorKind::ConfigUnsupported);

    let mut d = def(NAT);
    d.ips[0].hosts[0].name = Some("a\u{0}b".into());
    assert!(matches!(
        gen_err(&d),
        Error::UnsafeValue {
            element: "DHCP host name",
            reason: UnsafeReason::ControlCharacter,
            ..
        }
    ));

    let mut d = def(NAT);
    d.dns.hosts.push(DnsHostDef {
        ip: "192.168.122.1".parse().unwrap(),
        names: vec![String::new()],
    });
    assert!(matches!(
        gen_err(&d),
        Error::UnsafeValue {
            element: "DNS host name",
            reason: UnsafeReason::Empty,
            ..
        }
    ));
    // The same checks guard a host-file refresh.
    assert!(hosts_files(&d).is_err());

    let mut d = def(NAT);
    d.bridge = Some("virbr0\ninterface=eth0".into());
    assert!(matches!(
        gen_err(&d),
        Error::UnsafeValue {
            element: "bridge name",
            reason: UnsafeReason::LineBreak,
            ..
        }
    ));

    let d = def(NAT);
    assert!(matches!(
        DnsmasqConfig::generate(&d, &Options::new("/var/lib/x #y")).unwrap_err(),
        Error::UnsafeValue {
            element: "dnsmasq state directory",
            reason: UnsafeReason::Comment,
            ..
        }
    ));
}

mod injection_property {
    use super::*;
    use proptest::prelude::*;

    /// A definition carrying `v` in every value that is written verbatim.
    fn with_value(v: &str) -> NetworkDef {
        let mut d = def(
            "<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>\
             <name>p</name><forward mode='nat'/><bridge name='virbr0'/>\
             <domain name='d.example'/>\
             <dns><txt name='t' value='x'/><srv service='s' protocol='tcp' domain='x' target='x'/>\
             <host ip='10.0.0.2'><hostname>x</hostname></host></dns>\
             <ip address='10.0.0.1' prefix='24'><tftp root='/x'/><dhcp>\
             <range start='10.0.0.10' end='10.0.0.20'/>\
             <host mac='52:54:00:00:00:01' name='x' ip='10.0.0.5'/>\
             <bootp file='x'/></dhcp></ip>\
             <dnsmasq:options><dnsmasq:option value='x'/></dnsmasq:options></network>",
        );
        d.domain = Some(v.to_string());
        d.dns.txts[0].value = v.to_string();
        d.dns.srvs[0].domain = Some(v.to_string());
        d.dns.srvs[0].target = Some(v.to_string());
        d.dns.hosts[0].names[0] = v.to_string();
        d.ips[0].tftproot = Some(v.to_string());
        d.ips[0].bootfile = Some(v.to_string());
        d.ips[0].hosts[0].name = Some(v.to_string());
        d.dnsmasq_options[0] = v.to_string();
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever a value holds, either generation refuses it or the
        /// files keep their structure: the same number of lines and fields.
        #[test]
        fn values_never_add_lines_or_fields(v in "[a-z\n\r\t ,#/\"\\\\=\u{0}\u{85}]{0,12}") {
            let baseline = DnsmasqConfig::generate(&with_value("x"), &Options::default()).unwrap();
            let d = with_value(&v);
            if let Ok(f) = DnsmasqConfig::generate(&d, &Options::default()) {
                prop_assert_eq!(f.conf.lines().count(), baseline.conf.lines().count());
                let hosts = f.hostsfile.clone().unwrap_or_default();
                prop_assert_eq!(hosts.lines().count(), 1);
                prop_assert_eq!(hosts.matches(',').count(), 2);
                prop_assert_eq!(f.addnhosts.lines().count(), 1);
                prop_assert_eq!(f.addnhosts.split_whitespace().count(), 2);
                let txt_line = format!("\ntxt-record=t,{v}\n");
                let option_line = format!("\n{v}\n");
                prop_assert!(f.conf.contains(&txt_line));
                prop_assert!(f.conf.contains(&option_line));
            }
        }
    }
}
