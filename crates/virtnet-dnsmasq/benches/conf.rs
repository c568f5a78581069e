//! Conf generation for a NAT network with 200 static DHCP hosts and a few
//! DNS records, and a host-file refresh of the same network.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use virtnet_conf::NetworkDef;
use virtnet_dnsmasq::{DnsmasqConfig, Options, hosts_files};

fn network_xml(hosts: usize) -> String {
    let mut x = String::from(
        "<network><name>bench</name><forward mode='nat'/><bridge name='virbr60'/>\
         <domain name='bench.example'/>\
         <dns><txt name='info' value='bench network'/>\
         <srv service='ldap' protocol='tcp' target='ldap.bench.example' port='389'/>\
         <host ip='10.60.0.1'><hostname>gw</hostname><hostname>ns</hostname></host></dns>\
         <ip address='10.60.0.1' prefix='16'><dhcp>\
         <range start='10.60.1.1' end='10.60.1.254'><lease expiry='2' unit='hours'/></range>",
    );
    for i in 0..hosts {
        x.push_str(&format!(
            "<host mac='52:54:00:60:{:02x}:{:02x}' name='vm{i}' ip='10.60.{}.{}'/>",
            i / 256,
            i % 256,
            2 + i / 250,
            1 + i % 250
        ));
    }
    x.push_str(
        "</dhcp></ip><ip family='ipv6' address='fd00:60::1' prefix='64'><dhcp>\
         <range start='fd00:60::100' end='fd00:60::1ff'/></dhcp></ip></network>",
    );
    x
}

fn bench(c: &mut Criterion) {
    let def = match NetworkDef::parse(&network_xml(200)) {
        Ok(d) => d,
        Err(e) => panic!("benchmark network does not parse: {e}"),
    };
    let opts = Options::default().with_pid_file("/run/libvirt/network/bench.pid");
    c.bench_function("generate conf, 200 static hosts", |b| {
        b.iter(|| DnsmasqConfig::generate(black_box(&def), black_box(&opts)))
    });
    c.bench_function("host files, 200 static hosts", |b| {
        b.iter(|| hosts_files(black_box(&def)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
