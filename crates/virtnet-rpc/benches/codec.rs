//! Encoding and decoding the replies that dominate `virsh net-list` and
//! `virsh net-dumpxml`: a LIST_ALL_NETWORKS reply with 500 networks and a
//! GET_XML_DESC reply with a realistic network definition.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use virtnet_rpc::message::{Header, Message, MessageStatus, MessageType, encode_frame};
use virtnet_rpc::protocol::{ConnectListAllNetworksRet, NonnullNetwork, Procedure, XmlRet};
use virtnet_rpc::xdr::XdrDecode;

fn list_reply() -> ConnectListAllNetworksRet {
    let nets: Vec<NonnullNetwork> = (0..500u32)
        .map(|i| {
            let mut uuid = [0u8; 16];
            uuid[..4].copy_from_slice(&i.to_be_bytes());
            NonnullNetwork {
                name: format!("network-{i:04}"),
                uuid,
            }
        })
        .collect();
    ConnectListAllNetworksRet { ret: 500, nets }
}

fn xml_reply() -> XmlRet {
    let mut xml = String::from(
        "<network connections='3'>\n  <name>default</name>\n  \
         <uuid>c7a72b2e-6a35-4e0c-8a3d-2f5e9a1b0001</uuid>\n  <forward mode='nat'>\n    \
         <nat>\n      <port start='1024' end='65535'/>\n    </nat>\n  </forward>\n  \
         <bridge name='virbr0' stp='on' delay='0'/>\n  <mac address='52:54:00:0a:cd:21'/>\n  \
         <ip address='192.168.122.1' netmask='255.255.255.0'>\n    <dhcp>\n      \
         <range start='192.168.122.2' end='192.168.122.254'/>\n",
    );
    for i in 0..64 {
        xml.push_str(&format!(
            "      <host mac='52:54:00:00:00:{i:02x}' name='guest{i}' ip='192.168.122.{}'/>\n",
            i + 10
        ));
    }
    xml.push_str("    </dhcp>\n  </ip>\n</network>\n");
    XmlRet { xml }
}

fn reply_header(procedure: Procedure) -> Header {
    Header::remote(
        procedure.number(),
        MessageType::Reply,
        42,
        MessageStatus::Ok,
    )
}

fn bench_list_all_networks(c: &mut Criterion) {
    let reply = list_reply();
    let header = reply_header(Procedure::ConnectListAllNetworks);
    let frame = encode_frame(&header, &reply).expect("encode");
    let mut g = c.benchmark_group("list_all_networks_500");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| encode_frame(black_box(&header), black_box(&reply)).expect("encode"))
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let msg = Message::from_frame(black_box(&frame)).expect("frame");
            ConnectListAllNetworksRet::from_xdr(&msg.body).expect("decode")
        })
    });
    g.finish();
}

fn bench_get_xml_desc(c: &mut Criterion) {
    let reply = xml_reply();
    let header = reply_header(Procedure::NetworkGetXmlDesc);
    let frame = encode_frame(&header, &reply).expect("encode");
    let mut g = c.benchmark_group("get_xml_desc");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| encode_frame(black_box(&header), black_box(&reply)).expect("encode"))
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let msg = Message::from_frame(black_box(&frame)).expect("frame");
            XmlRet::from_xdr(&msg.body).expect("decode")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_list_all_networks, bench_get_xml_desc);
criterion_main!(benches);
