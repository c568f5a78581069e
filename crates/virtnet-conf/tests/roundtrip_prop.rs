//! Property: formatting is a fixed point after one parse —
//! `format(parse(format(parse(x)))) == format(parse(x))` — for generated
//! definitions and for every input of libvirt's corpus. Also: parsing
//! arbitrary text never panics.

use proptest::prelude::*;
use virtnet_conf::{FormatFlags, NetworkDef, PortDef};

fn fixed_point(xml: &str) -> Result<(), TestCaseError> {
    let Ok(def) = NetworkDef::parse(xml) else {
        return Ok(());
    };
    for flags in [FormatFlags::ACTIVE, FormatFlags::INACTIVE] {
        let once = def.to_xml(flags);
        let again = NetworkDef::parse(&once)
            .map_err(|e| TestCaseError::fail(format!("output does not parse: {e}\n{once}")))?;
        prop_assert_eq!(&again.to_xml(flags), &once);
        // The model itself survives the trip (runtime-only fields aside).
        prop_assert_eq!(&again, &def);
    }
    Ok(())
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a".to_string()),
            Just(" ".to_string()),
            Just("&amp;".to_string()),
            Just("&lt;".to_string()),
            Just("&gt;".to_string()),
            Just("&apos;".to_string()),
            Just("&quot;".to_string()),
            Just("é".to_string()),
            Just("☃".to_string()),
            "[a-zA-Z0-9._-]{1,6}",
        ],
        1..6,
    )
    .prop_map(|v| v.concat())
}

fn devname() -> impl Strategy<Value = String> {
    "[a-z]{2,5}[0-9]{1,2}"
}

fn mac() -> impl Strategy<Value = String> {
    prop::array::uniform5(any::<u8>()).prop_map(|b| {
        format!(
            "52:{:02x}:{:02X}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4]
        )
    })
}

fn uuid() -> impl Strategy<Value = String> {
    prop::array::uniform16(any::<u8>()).prop_map(|b| {
        let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            h[0..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..16].concat()
        )
    })
}

fn bandwidth() -> impl Strategy<Value = String> {
    (
        // Zero is in range on purpose: libvirt accepts `average='0'` with a
        // `peak` or `burst`, and the output must still parse.
        0u64..100000,
        prop::option::of(0u64..100000),
        prop::option::of(0u64..10000),
        any::<bool>(),
    )
        .prop_map(|(avg, peak, burst, out)| {
            let mut s = format!("<bandwidth><inbound average='{avg}'");
            if let Some(p) = peak {
                s.push_str(&format!(" peak='{p}'"));
            }
            if let Some(b) = burst {
                s.push_str(&format!(" burst='{b}'"));
            }
            s.push_str("/>");
            if out {
                s.push_str(&format!("<outbound average='{avg}'/>"));
            }
            s.push_str("</bandwidth>");
            s
        })
}

fn vlan() -> impl Strategy<Value = String> {
    (prop::collection::btree_set(0u32..4096, 1..4), any::<bool>()).prop_map(|(tags, native)| {
        let tags: Vec<u32> = tags.into_iter().collect();
        let mut s = String::from(if tags.len() > 1 {
            "<vlan trunk='yes'>"
        } else {
            "<vlan>"
        });
        for (i, t) in tags.iter().enumerate() {
            if native && i == 0 && tags.len() > 1 {
                s.push_str(&format!("<tag id='{t}' nativeMode='tagged'/>"));
            } else {
                s.push_str(&format!("<tag id='{t}'/>"));
            }
        }
        s.push_str("</vlan>");
        s
    })
}

fn metadata() -> impl Strategy<Value = String> {
    prop::collection::vec((0u8..4, text(), any::<bool>()), 0..4).prop_map(|items| {
        let mut s = String::from("<metadata>");
        for (i, (ns, t, nested)) in items.iter().enumerate() {
            if *nested {
                s.push_str(&format!(
                    "<m{ns}:e{i} xmlns:m{ns}='http://m{ns}.example/' k='{t}'>\n  <m{ns}:c>{t}</m{ns}:c>\n</m{ns}:e{i}>"
                ));
            } else {
                s.push_str(&format!("<m{ns}:e{i} xmlns:m{ns}='http://m{ns}.example/'>{t}</m{ns}:e{i}>"));
            }
        }
        s.push_str("</metadata>");
        s
    })
}

/// A virtual (libvirt-managed bridge) network.
fn virtual_network() -> impl Strategy<Value = String> {
    (
        (
            "[a-z][a-z0-9_-]{0,10}",
            uuid(),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(metadata()),
            prop::sample::select(vec!["", "<forward/>", "<forward mode='route'/>", "<forward mode='open'/>", "<forward mode='nat' dev='eth0'><nat><port start='1024' end='2048'/></nat></forward>"]),
            prop::option::of(devname()),
            any::<bool>(),
            0u32..10,
        ),
        (
            prop::option::of(1280u32..9000),
            prop::option::of(mac()),
            prop::option::of(bandwidth()),
            1u8..254,
            prop::collection::vec((mac(), 2u8..250, "[a-z][a-z0-9]{0,6}"), 0..4),
            any::<bool>(),
            prop::option::of(prop::sample::select(vec!["yes", "no"])),
            prop::collection::vec(text(), 0..3),
        ),
    )
        .prop_map(
            |((name, uuid, title, desc, md, fwd, br, stp, delay), (mtu, mac, bw, net, hosts, v6, iso, opts))| {
                let mut s = String::new();
                if !opts.is_empty() {
                    s.push_str("<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>");
                } else {
                    s.push_str("<network>");
                }
                s.push_str(&format!("<name>{name}</name><uuid>{uuid}</uuid>"));
                if let Some(t) = title {
                    s.push_str(&format!("<title>{t}</title>"));
                }
                if let Some(d) = desc {
                    s.push_str(&format!("<description>{d}\n{d}</description>"));
                }
                if let Some(m) = md {
                    s.push_str(&m);
                }
                s.push_str(fwd);
                s.push_str("<bridge");
                if let Some(b) = br {
                    s.push_str(&format!(" name='{b}'"));
                }
                s.push_str(&format!(" stp='{}' delay='{delay}'/>", if stp { "on" } else { "off" }));
                if let Some(m) = mtu {
                    s.push_str(&format!("<mtu size='{m}'/>"));
                }
                if let Some(m) = mac {
                    s.push_str(&format!("<mac address='{m}'/>"));
                }
                if let Some(b) = bw {
                    s.push_str(&b);
                }
                if let Some(i) = iso {
                    s.push_str(&format!("<port isolated='{i}'/>"));
                }
                s.push_str("<dns><txt name='t' value='v'/><host ip='10.9.9.9'><hostname>h</hostname></host></dns>");
                s.push_str(&format!("<ip address='10.{net}.0.1' prefix='24'><dhcp><range start='10.{net}.0.100' end='10.{net}.0.200'/>"));
                for (i, (m, last, hn)) in hosts.iter().enumerate() {
                    if *last >= 100 && *last <= 200 {
                        continue;
                    }
                    s.push_str(&format!("<host mac='{m}' name='{hn}{i}' ip='10.{net}.0.{last}'/>"));
                }
                s.push_str("</dhcp></ip>");
                if v6 {
                    s.push_str(&format!("<ip family='ipv6' address='fd00:{net:x}::1' prefix='64'/>"));
                    s.push_str(&format!("<route family='ipv6' address='fd01:{net:x}::' prefix='64' gateway='fd00:{net:x}::2'/>"));
                }
                s.push_str(&format!("<route address='172.16.{net}.0' prefix='24' gateway='10.{net}.0.254'/>"));
                if !opts.is_empty() {
                    s.push_str("<dnsmasq:options>");
                    for o in &opts {
                        s.push_str(&format!("<dnsmasq:option value='{o}'/>"));
                    }
                    s.push_str("</dnsmasq:options>");
                }
                s.push_str("</network>");
                s
            },
        )
}

/// A network on host devices (bridge/macvtap/hostdev modes).
fn device_network() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9_-]{0,10}",
        uuid(),
        prop::sample::select(vec!["bridge", "private", "vepa", "passthrough", "hostdev"]),
        prop::collection::btree_set(devname(), 1..4),
        prop::collection::btree_set((0u32..256, 0u32..32, 0u32..8), 1..4),
        prop::collection::vec((prop::option::of(vlan()), prop::option::of(bandwidth()), any::<bool>()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(name, uuid, mode, devs, pcis, pgs, ovs)| {
            let mut s = format!("<network><name>{name}</name><uuid>{uuid}</uuid>");
            if mode == "hostdev" {
                s.push_str("<forward mode='hostdev' managed='yes'>");
                for (bus, slot, func) in &pcis {
                    s.push_str(&format!(
                        "<address type='pci' domain='0' bus='{bus}' slot='{slot}' function='{func}'/>"
                    ));
                }
                s.push_str("</forward>");
            } else if mode == "bridge" && ovs {
                s.push_str("<forward mode='bridge'/><bridge name='ovsbr0'/><virtualport type='openvswitch'/>");
            } else {
                s.push_str(&format!("<forward mode='{mode}'>"));
                for d in &devs {
                    s.push_str(&format!("<interface dev='{d}'/>"));
                }
                s.push_str("</forward>");
            }
            for (i, (v, b, def)) in pgs.iter().enumerate() {
                s.push_str(&format!("<portgroup name='pg{i}'{}>", if *def && i == 0 { " default='yes'" } else { "" }));
                if let Some(v) = v {
                    s.push_str(v);
                }
                if let Some(b) = b {
                    s.push_str(b);
                }
                s.push_str("</portgroup>");
            }
            s.push_str("</network>");
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_virtual_networks_are_fixed_points(xml in virtual_network()) {
        prop_assert!(NetworkDef::parse(&xml).is_ok(), "generator produced invalid XML: {:?}\n{}", NetworkDef::parse(&xml).err(), xml);
        fixed_point(&xml)?;
    }

    #[test]
    fn generated_device_networks_are_fixed_points(xml in device_network()) {
        prop_assert!(NetworkDef::parse(&xml).is_ok(), "generator produced invalid XML: {:?}\n{}", NetworkDef::parse(&xml).err(), xml);
        fixed_point(&xml)?;
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,400}") {
        let _ = NetworkDef::parse(&s);
        let _ = PortDef::parse(&s);
    }

    #[test]
    fn mutated_xml_never_panics(xml in virtual_network(), cut in any::<prop::sample::Index>(), junk in "[<>&'\"a-z/= ]{0,8}") {
        let at = cut.index(xml.len() + 1);
        let at = (0..=at).rev().find(|i| xml.is_char_boundary(*i)).unwrap_or(0);
        let mutated = format!("{}{}{}", &xml[..at], junk, &xml[at..]);
        let _ = fixed_point(&mutated);
    }
}

#[test]
fn corpus_inputs_are_fixed_points() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut count = 0;
    for sub in [
        "networkxml2xmlin",
        "networkxml2xmlout",
        "networkxml2confdata",
        "networkxml2firewalldata",
    ] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("xml") {
                continue;
            }
            let xml = virtnet_corpus::read_linked(&p).unwrap_or_default();
            if let Err(e) = fixed_point(&xml) {
                panic!("{}: {e}", p.display());
            }
            count += 1;
        }
    }
    assert!(count > 40, "only {count} corpus inputs found");
}
