//! `net-update` cases under `tests/data/conf/update`: `NAME.xml` is the
//! starting definition, `NAME.ops` a list of operations, each line
//! `COMMAND SECTION PARENT-INDEX XML` (virsh's command and section names)
//! followed by `=> ok` or `=> MESSAGE`, and `NAME.out` the resulting
//! persistent definition. Messages were taken from libvirt's network driver.

mod common;

use virtnet_conf::{FormatFlags, NetworkDef, UpdateCommand, UpdateSection};

fn command(name: &str) -> UpdateCommand {
    match name {
        "add" | "add-last" => UpdateCommand::AddLast,
        "add-first" => UpdateCommand::AddFirst,
        "modify" => UpdateCommand::Modify,
        "delete" => UpdateCommand::Delete,
        other => panic!("unknown command {other}"),
    }
}

fn section(name: &str) -> UpdateSection {
    match name {
        "bridge" => UpdateSection::Bridge,
        "domain" => UpdateSection::Domain,
        "ip" => UpdateSection::Ip,
        "ip-dhcp-host" => UpdateSection::IpDhcpHost,
        "ip-dhcp-range" => UpdateSection::IpDhcpRange,
        "forward" => UpdateSection::Forward,
        "forward-interface" => UpdateSection::ForwardInterface,
        "forward-pf" => UpdateSection::ForwardPf,
        "portgroup" => UpdateSection::Portgroup,
        "dns-host" => UpdateSection::DnsHost,
        "dns-txt" => UpdateSection::DnsTxt,
        "dns-srv" => UpdateSection::DnsSrv,
        other => panic!("unknown section {other}"),
    }
}

#[test]
fn update_cases() {
    let dir = common::own_data_dir().join("update");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("update cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("xml"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let mut def = NetworkDef::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let ops = std::fs::read_to_string(path.with_extension("ops")).unwrap();
        let mut lines = ops.lines();
        while let Some(op) = lines.next() {
            count += 1;
            let expect = lines
                .next()
                .and_then(|l| l.strip_prefix("=> "))
                .unwrap_or("?");
            let mut parts = op.splitn(4, ' ');
            let (c, s, pi, xml) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("-1"),
                parts.next().unwrap_or(""),
            );
            let before = def.clone();
            let got = match def.update_section(command(c), section(s), pi.parse().unwrap(), xml) {
                Ok(()) => "ok".to_string(),
                Err(e) => {
                    if def != before {
                        failures.push(format!(
                            "{name}: {op}: failed update changed the definition"
                        ));
                    }
                    e.to_string()
                }
            };
            if got != expect {
                failures.push(format!("{name}: {op}\n    want: {expect}\n    got:  {got}"));
            }
        }
        let out = def.to_xml(FormatFlags::INACTIVE);
        let out_path = path.with_extension("out");
        if std::env::var_os("VIRTNET_REGENERATE_OUTPUT").is_some() {
            std::fs::write(&out_path, &out).unwrap();
        } else {
            let want = std::fs::read_to_string(&out_path).unwrap_or_default();
            if want != out {
                failures.push(format!(
                    "{name}: result differs\n{}",
                    common::diff(&want, &out)
                ));
            }
        }
    }
    assert!(count > 0);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn interface_in_use_cannot_be_deleted() {
    let mut def = NetworkDef::parse(
        "<network><name>pool</name><forward mode='bridge'>\
         <interface dev='eth0'/><interface dev='eth1'/></forward></network>",
    )
    .unwrap();
    def.forward.ifs[1].connections = 2;
    let e = def
        .update_section(
            UpdateCommand::Delete,
            UpdateSection::ForwardInterface,
            -1,
            "<interface dev='eth1'/>",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Requested operation is not valid: unable to delete interface 'eth1' in network 'pool'. It is currently being used by 2 domains."
    );
    assert_eq!(e.kind().code(), 55);
    def.update_section(
        UpdateCommand::Delete,
        UpdateSection::ForwardInterface,
        -1,
        "<interface dev='eth0'/>",
    )
    .unwrap();
    assert_eq!(def.forward.ifs.len(), 1);
}

#[test]
fn codes_match_libvirt() {
    assert_eq!(UpdateCommand::from_code(3), Some(UpdateCommand::AddLast));
    assert_eq!(UpdateCommand::AddFirst as u32, 4);
    assert_eq!(UpdateSection::from_code(12), Some(UpdateSection::DnsSrv));
    assert_eq!(UpdateSection::IpDhcpHost as u32, 4);
    assert_eq!(UpdateSection::from_code(13), None);
}
