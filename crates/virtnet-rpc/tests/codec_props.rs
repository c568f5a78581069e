//! Property tests: encode/decode round trips for the protocol structs, and
//! arbitrary bytes fed to every decoder never panic.

#![allow(clippy::unwrap_used)]
use proptest::prelude::*;

use virtnet_rpc::message::{FrameReader, Header, Message, MessageStatus, MessageType};
use virtnet_rpc::protocol::{
    ConnectListAllNetworksRet, NetworkDhcpLease, NetworkEventLifecycleMsg, NetworkGetDhcpLeasesRet,
    NetworkPortGetParametersRet, NetworkSetMetadataArgs, NetworkUpdateArgs, NonnullNetwork,
    NonnullNetworkPort, TypedParam, TypedParamValue,
};
use virtnet_rpc::xdr::{Decoder, XdrDecode, XdrEncode};
use virtnet_rpc::{Call, ErrorCode, ErrorDomain, Event, Procedure, RemoteError, Reply};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.\\-]{0,24}"
}

fn text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.chars().take(64).collect())
}

fn network() -> impl Strategy<Value = NonnullNetwork> {
    (name(), any::<[u8; 16]>()).prop_map(|(name, uuid)| NonnullNetwork { name, uuid })
}

fn typed_value() -> impl Strategy<Value = TypedParamValue> {
    prop_oneof![
        any::<i32>().prop_map(TypedParamValue::Int),
        any::<u32>().prop_map(TypedParamValue::UInt),
        any::<i64>().prop_map(TypedParamValue::LLong),
        any::<u64>().prop_map(TypedParamValue::ULLong),
        // NaN never compares equal; keep to finite values.
        (-1e300f64..1e300).prop_map(TypedParamValue::Double),
        any::<bool>().prop_map(TypedParamValue::Boolean),
        text().prop_map(TypedParamValue::String),
    ]
}

fn round_trip<T: XdrEncode + XdrDecode + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = v.to_xdr().unwrap();
    assert_eq!(bytes.len() % 4, 0, "XDR data is a multiple of 4 bytes");
    let mut dec = Decoder::new(&bytes);
    let back = T::decode(&mut dec).unwrap();
    assert_eq!(&back, v);
    assert_eq!(dec.remaining(), 0);
    // Every strict prefix is rejected, never panics.
    for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut < bytes.len() {
            assert!(T::from_xdr(&bytes[..cut]).is_err() || cut == 0 && bytes.is_empty());
        }
    }
}

proptest! {
    #[test]
    fn list_all_networks_ret(nets in prop::collection::vec(network(), 0..20), ret in any::<u32>()) {
        round_trip(&ConnectListAllNetworksRet { nets, ret });
    }

    #[test]
    fn update_args(net in network(), command in any::<u32>(), section in any::<u32>(),
                   parent_index in any::<i32>(), xml in text(), flags in any::<u32>()) {
        round_trip(&NetworkUpdateArgs { net, command, section, parent_index, xml, flags });
    }

    #[test]
    fn dhcp_leases(leases in prop::collection::vec(
        (name(), any::<i64>(), 0..2i32, prop::option::of(name()), prop::option::of(name()),
         name(), 0..129u32, prop::option::of(name()), prop::option::of(text())),
        0..8)) {
        let leases: Vec<NetworkDhcpLease> = leases.into_iter().map(
            |(iface, expirytime, kind, mac, iaid, ipaddr, prefix, hostname, clientid)| {
                NetworkDhcpLease { iface, expirytime, kind, mac, iaid, ipaddr, prefix, hostname, clientid }
            }).collect();
        let ret = leases.len() as u32;
        round_trip(&NetworkGetDhcpLeasesRet { leases, ret });
    }

    #[test]
    fn typed_params(params in prop::collection::vec((name(), typed_value()), 0..16), nparams in any::<i32>()) {
        let params = params.into_iter().map(|(f, v)| TypedParam::new(f, v)).collect();
        round_trip(&NetworkPortGetParametersRet { params, nparams });
    }

    #[test]
    fn set_metadata(network in network(), kind in any::<i32>(), metadata in prop::option::of(text()),
                    key in prop::option::of(name()), uri in prop::option::of(text()), flags in any::<u32>()) {
        round_trip(&NetworkSetMetadataArgs { network, kind, metadata, key, uri, flags });
    }

    #[test]
    fn port_ref(net in network(), uuid in any::<[u8; 16]>()) {
        round_trip(&NonnullNetworkPort { net, uuid });
    }

    #[test]
    fn events(net in network(), callback_id in any::<i32>(), event in any::<i32>(), detail in any::<i32>()) {
        let ev = Event::NetworkEventLifecycle(NetworkEventLifecycleMsg { callback_id, net, event, detail });
        let body = ev.encode_body().unwrap();
        prop_assert_eq!(Event::decode(ev.procedure(), &body).unwrap(), Some(ev));
    }

    #[test]
    fn remote_errors(code in 0..120i32, domain in 0..80i32, detail in text()) {
        let e = RemoteError::new(ErrorCode(code), ErrorDomain(domain), detail);
        round_trip(&e);
    }

    #[test]
    fn headers(program in any::<u32>(), version in any::<u32>(), procedure in any::<i32>(),
               kind in 0..7i32, serial in any::<u32>(), status in 0..3i32,
               body in prop::collection::vec(any::<u8>(), 0..64)) {
        let header = Header {
            program, version, procedure,
            kind: MessageType::from_i32(kind).unwrap(),
            serial,
            status: MessageStatus::from_i32(status).unwrap(),
        };
        let msg = Message { header, body };
        let frame = msg.to_frame().unwrap();
        prop_assert_eq!(Message::from_frame(&frame).unwrap(), msg.clone());
        let mut r = FrameReader::new(&frame[..]);
        prop_assert_eq!(r.read_message().unwrap(), Some(msg));
    }

    /// Arbitrary bytes into every decoder: errors are fine, panics are not.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for p in Procedure::ALL {
            let _ = Call::decode(*p, &bytes);
            let _ = Reply::decode(*p, &bytes);
            let _ = Event::decode(*p, &bytes);
        }
        let _ = RemoteError::from_xdr(&bytes);
        let _ = Message::from_frame(&bytes);
        let _ = Message::from_packet(&bytes);
        let mut r = FrameReader::new(&bytes[..]);
        while let Ok(Some(_)) = r.read_message() {}
    }

    /// Garbage that starts with a huge array count must fail on the data,
    /// not allocate the count.
    #[test]
    fn huge_counts_are_cheap(count in 16_385u32.., tail in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = count.to_be_bytes().to_vec();
        bytes.extend(tail);
        prop_assert!(ConnectListAllNetworksRet::from_xdr(&bytes).is_err());
        prop_assert!(String::from_xdr(&bytes).is_err() || count <= 4_194_304);
    }
}

#[test]
fn list_all_networks_ret_known_bytes() {
    // Two networks, "a" and "bc", then ret = 2.
    let v = ConnectListAllNetworksRet {
        nets: vec![
            NonnullNetwork {
                name: "a".into(),
                uuid: [1; 16],
            },
            NonnullNetwork {
                name: "bc".into(),
                uuid: [2; 16],
            },
        ],
        ret: 2,
    };
    let mut want = vec![0, 0, 0, 2];
    want.extend([0, 0, 0, 1, b'a', 0, 0, 0]);
    want.extend([1; 16]);
    want.extend([0, 0, 0, 2, b'b', b'c', 0, 0]);
    want.extend([2; 16]);
    want.extend([0, 0, 0, 2]);
    assert_eq!(v.to_xdr().unwrap(), want);
}
