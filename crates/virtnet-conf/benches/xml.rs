//! Network XML parse and format: what every define, start, status write and
//! `net-dumpxml` costs.
//!
//! - a large NAT network: 1000 static DHCP hosts, 250 DNS hosts, SRV and TXT
//!   records and 50 portgroups with bandwidth;
//! - a large Open vSwitch network: 200 portgroups with vlan trunks and
//!   virtualport profiles;
//! - libvirt's own `nat-network.xml` from its test corpus (skipped with a
//!   message when the corpus is not next to the workspace).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use virtnet_conf::{FormatFlags, NetworkDef};

fn large_nat(hosts: usize, dns_hosts: usize, portgroups: usize) -> String {
    let mut x = String::from(
        "<network>\n  <name>large-nat</name>\n  \
         <uuid>5b1f0f1e-0c1a-4d7e-9a55-3c1f2b7d9e01</uuid>\n  \
         <forward mode='nat'>\n    <nat>\n      <port start='1024' end='65535'/>\n    \
         </nat>\n  </forward>\n  <bridge name='virbr9' stp='on' delay='0'/>\n  \
         <mac address='52:54:00:12:34:56'/>\n  <domain name='large.example'/>\n  <dns>\n    \
         <txt name='info' value='a large network'/>\n    \
         <srv service='ldap' protocol='tcp' domain='large.example' \
         target='ldap.large.example' port='389' priority='10' weight='10'/>\n",
    );
    for i in 0..dns_hosts {
        x.push_str(&format!(
            "    <host ip='10.9.{}.{}'>\n      <hostname>h{i}</hostname>\n      \
             <hostname>h{i}.large.example</hostname>\n    </host>\n",
            8 + i / 250,
            1 + i % 250
        ));
    }
    x.push_str("  </dns>\n");
    for i in 0..portgroups {
        x.push_str(&format!(
            "  <portgroup name='pg{i}'{}>\n    <bandwidth>\n      \
             <inbound average='{}' peak='{}' burst='1024'/>\n      \
             <outbound average='{}'/>\n    </bandwidth>\n  </portgroup>\n",
            if i == 0 { " default='yes'" } else { "" },
            1000 + i,
            2000 + i,
            500 + i
        ));
    }
    x.push_str(
        "  <ip address='10.9.0.1' netmask='255.255.0.0'>\n    <dhcp>\n      \
         <range start='10.9.1.1' end='10.9.1.254'/>\n",
    );
    for i in 0..hosts {
        x.push_str(&format!(
            "      <host mac='52:54:00:09:{:02x}:{:02x}' name='vm{i}' ip='10.9.{}.{}'/>\n",
            i / 256,
            i % 256,
            2 + i / 250,
            1 + i % 250
        ));
    }
    x.push_str(
        "    </dhcp>\n  </ip>\n  <ip family='ipv6' address='fd00:9::1' prefix='64'>\n    \
         <dhcp>\n      <range start='fd00:9::100' end='fd00:9::1ff'/>\n    </dhcp>\n  \
         </ip>\n</network>\n",
    );
    x
}

fn large_ovs(portgroups: usize) -> String {
    let mut x = String::from(
        "<network>\n  <name>large-ovs</name>\n  \
         <uuid>5b1f0f1e-0c1a-4d7e-9a55-3c1f2b7d9e02</uuid>\n  \
         <forward mode='bridge'/>\n  <bridge name='ovsbr0'/>\n  \
         <virtualport type='openvswitch'/>\n",
    );
    for i in 0..portgroups {
        x.push_str(&format!(
            "  <portgroup name='pg{i}'{}>\n    <vlan trunk='yes'>\n      \
             <tag id='{}' nativeMode='untagged'/>\n      <tag id='{}'/>\n      \
             <tag id='{}'/>\n    </vlan>\n    <virtualport>\n      \
             <parameters profileid='profile-{i}'/>\n    </virtualport>\n  </portgroup>\n",
            if i == 0 { " default='yes'" } else { "" },
            100 + i,
            1000 + i,
            2000 + i
        ));
    }
    x.push_str("</network>\n");
    x
}

fn corpus_nat_network() -> Option<String> {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return None;
    };
    let file = dir.join("networkxml2xmlin/nat-network.xml");
    match std::fs::read_to_string(&file) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "skipped: corpus nat-network ({}: {e}; set VIRTNET_CONFORMANCE_DIR)",
                file.display()
            );
            None
        }
    }
}

fn bench_one(c: &mut Criterion, name: &str, xml: &str) {
    let def = match NetworkDef::parse(xml) {
        Ok(d) => d,
        Err(e) => panic!("benchmark network {name} does not parse: {e}"),
    };
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| NetworkDef::parse(black_box(xml)).map(|_| ()))
    });
    g.bench_function("format", |b| {
        b.iter(|| black_box(&def).to_xml(FormatFlags::ACTIVE))
    });
    g.bench_function("parse+format", |b| {
        b.iter(|| NetworkDef::parse(black_box(xml)).map(|d| d.to_xml(FormatFlags::INACTIVE)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_one(c, "large_nat_1000_hosts", &large_nat(1000, 250, 50));
    bench_one(c, "large_ovs_200_portgroups", &large_ovs(200));
    if let Some(xml) = corpus_nat_network() {
        bench_one(c, "corpus_nat_network", &xml);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
