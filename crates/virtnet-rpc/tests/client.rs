//! Our own `Client` against `serve_connection` with the in-memory driver:
//! handshake, calls, errors, keepalive in both directions, events while a
//! call is in flight, and hostile input on the server socket.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{FakeDriver, TestServer};
use virtnet_rpc::message::{
    FrameReader, Header, KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, Message, MessageStatus,
    MessageType, encode_frame,
};
use virtnet_rpc::protocol::{
    ConnectListAllNetworksArgs, ConnectListAllNetworksRet, ConnectNetworkEventDeregisterAnyArgs,
    ConnectNetworkEventRegisterAnyArgs, ConnectNetworkEventRegisterAnyRet,
    ConnectSupportsFeatureArgs, NetworkArgs, NetworkGetXmlDescArgs, NetworkLookupByNameArgs,
    NetworkRet, NetworkXmlArgs, XmlRet, feature, list_networks, network_event,
};
use virtnet_rpc::xdr::XdrDecode;
use virtnet_rpc::{
    Client, ClientKeepalive, ConnectOptions, ErrorCode, ErrorDomain, Event, KeepaliveConfig,
    Procedure, RemoteError, RpcError, ServeOptions,
};

const LIMIT: Duration = Duration::from_secs(20);

fn options() -> ConnectOptions {
    ConnectOptions {
        call_timeout: Some(LIMIT),
        ..ConnectOptions::default()
    }
}

fn lookup(client: &Client, name: &str) -> Result<NetworkRet, RpcError> {
    client.call(
        Procedure::NetworkLookupByName,
        &NetworkLookupByNameArgs { name: name.into() },
    )
}

#[test]
fn handshake_matches_virsh_and_calls_work() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Client::connect_unix(&srv.socket, &options()).unwrap();
    assert!(client.features().keepalive);
    assert!(client.features().event_callback);
    assert!(client.features().close_callback);
    assert_eq!(
        *srv.driver.calls.lock().unwrap(),
        [
            Procedure::AuthList,
            Procedure::ConnectOpen,
            Procedure::ConnectSupportsFeature,
            Procedure::ConnectSupportsFeature
        ]
    );

    // The server read SO_PEERCRED: that is us.
    let peer = srv.driver.peers.lock().unwrap()[0].expect("peer credentials");
    assert_eq!(peer.pid, std::process::id() as i32);
    assert_eq!(peer.uid, nix::unistd::getuid().as_raw());

    let all: ConnectListAllNetworksRet = client
        .call(
            Procedure::ConnectListAllNetworks,
            &ConnectListAllNetworksArgs {
                need_results: 1,
                flags: 0,
            },
        )
        .unwrap();
    assert_eq!(all.ret, 2);
    let names: Vec<_> = all.nets.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["default", "isolated"]);

    let inactive: ConnectListAllNetworksRet = client
        .call(
            Procedure::ConnectListAllNetworks,
            &ConnectListAllNetworksArgs {
                need_results: 1,
                flags: list_networks::INACTIVE,
            },
        )
        .unwrap();
    assert_eq!(inactive.nets.len(), 1);
    assert_eq!(inactive.nets[0].name, "isolated");

    let net = lookup(&client, "default").unwrap().net;
    let xml: XmlRet = client
        .call(
            Procedure::NetworkGetXmlDesc,
            &NetworkGetXmlDescArgs {
                net: net.clone(),
                flags: 0,
            },
        )
        .unwrap();
    assert!(xml.xml.contains("<name>default</name>"));

    // Errors keep libvirt's code, domain and text.
    let err = lookup(&client, "nosuch").unwrap_err();
    let remote = err.remote().expect("remote error");
    assert_eq!(remote.code, ErrorCode::NO_NETWORK);
    assert_eq!(remote.domain, ErrorDomain::NETWORK);
    assert_eq!(
        remote.text(),
        "Network not found: no network with matching name 'nosuch'"
    );

    // Serials increase by one per call, starting at 0 as virsh's do.
    let serials = srv.driver.serials.lock().unwrap().clone();
    let mut expected: Vec<u32> = (0..serials.len() as u32 + 1).collect();
    expected.remove(1); // serial 1 was the keepalive probe the server answered itself.
    assert_eq!(serials, expected);

    client.close().unwrap();
    assert!(srv.wait_disconnected(1, LIMIT));
    assert_eq!(srv.results.lock().unwrap().as_slice(), ["ok"]);
}

#[test]
fn unknown_procedure_keeps_connection() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Client::connect_unix(&srv.socket, &options()).unwrap();
    let err = client.call_raw(9999, &[]).unwrap_err();
    let remote = err.remote().expect("remote error");
    assert_eq!(remote.code, ErrorCode::RPC);
    assert_eq!(remote.domain, ErrorDomain::RPC);
    assert_eq!(remote.text(), "unknown procedure: 9999");
    assert_eq!(*srv.driver.unknown.lock().unwrap(), [9999]);
    assert!(client.is_alive());
    // A libvirt procedure without a typed form here: "not supported".
    let err = client.call_raw(6, &[]).unwrap_err();
    let remote = err.remote().unwrap();
    assert_eq!(remote.code, ErrorCode::NO_SUPPORT);
    assert_eq!(
        remote.text(),
        "this function is not supported by the connection driver: virNodeGetInfo"
    );
    // An event procedure number sent as a call is unknown too.
    let err = client.call_raw(315, &[]).unwrap_err();
    assert_eq!(err.remote().unwrap().text(), "unknown procedure: 315");
    // A known procedure the driver does not implement.
    let err = client
        .call::<_, virtnet_rpc::protocol::NetworkPortRet>(
            Procedure::NetworkPortCreateXml,
            &virtnet_rpc::protocol::NetworkPortCreateXmlArgs {
                network: lookup(&client, "default").unwrap().net,
                xml: "<networkport/>".into(),
                flags: 0,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.remote().unwrap().text(),
        "this function is not supported by the connection driver: virNetworkPortCreateXML"
    );
    // Undecodable arguments: an RPC error, connection kept.
    let err = client
        .call_raw(Procedure::NetworkLookupByName.number(), &[0, 0, 0, 9, 1])
        .unwrap_err();
    assert_eq!(
        err.remote().unwrap().text(),
        "Unable to decode message payload"
    );
    assert!(lookup(&client, "default").is_ok());
}

#[test]
fn read_only_connection_refuses_mutations() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Client::connect_unix(
        &srv.socket,
        &ConnectOptions {
            read_only: true,
            ..options()
        },
    )
    .unwrap();
    let err = client
        .call::<_, NetworkRet>(
            Procedure::NetworkDefineXml,
            &NetworkXmlArgs {
                xml: "<network><name>x</name></network>".into(),
            },
        )
        .unwrap_err();
    let remote = err.remote().unwrap();
    assert_eq!(remote.code, ErrorCode::OPERATION_DENIED);
    assert_eq!(
        remote.text(),
        "operation forbidden: read only access prevents virNetworkDefineXML"
    );
    // The refusal happens before the driver sees the call.
    assert!(
        !srv.driver
            .calls
            .lock()
            .unwrap()
            .contains(&Procedure::NetworkDefineXml)
    );
    // Reads still work.
    assert!(lookup(&client, "isolated").is_ok());
}

#[test]
fn calls_before_open_are_refused() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Client::connect_unix(
        &srv.socket,
        &ConnectOptions {
            handshake: false,
            ..options()
        },
    )
    .unwrap();
    let err = lookup(&client, "default").unwrap_err();
    assert_eq!(
        err.remote().unwrap().text(),
        "internal error: connection not open"
    );
    // Feature probing is allowed before open.
    let r: virtnet_rpc::protocol::ConnectSupportsFeatureRet = client
        .call(
            Procedure::ConnectSupportsFeature,
            &ConnectSupportsFeatureArgs {
                feature: feature::PROGRAM_KEEPALIVE,
            },
        )
        .unwrap();
    assert_eq!(r.supported, 1);
}

#[test]
fn client_pings_server() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Client::connect_unix(&srv.socket, &options()).unwrap();
    for _ in 0..3 {
        client.ping(LIMIT).unwrap();
    }
    // Automatic client keepalive keeps an idle connection alive.
    let client = Client::connect_unix(
        &srv.socket,
        &ConnectOptions {
            keepalive: Some(ClientKeepalive {
                interval: Duration::from_millis(100),
                count: 5,
            }),
            ..options()
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(client.is_alive());
    assert!(lookup(&client, "default").is_ok());
}

#[test]
fn server_pings_client_and_drops_silent_ones() {
    let ka = KeepaliveConfig {
        interval: Duration::from_millis(100),
        count: 5,
    };
    let srv = TestServer::start(
        FakeDriver::standard(),
        ServeOptions {
            keepalive: Some(ka),
            ..ServeOptions::default()
        },
    );
    // Our client answers the server's PINGs: the idle connection survives
    // many keepalive intervals.
    let client = Client::connect_unix(
        &srv.socket,
        &ConnectOptions {
            keepalive: None,
            ..options()
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(client.is_alive());
    assert!(lookup(&client, "default").is_ok());

    // A raw peer that announces keepalive support and then stays silent
    // gets PINGs, then is disconnected.
    let mut raw = UnixStream::connect(&srv.socket).unwrap();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    let probe = encode_frame(
        &Header::remote(
            Procedure::ConnectSupportsFeature.number(),
            MessageType::Call,
            0,
            MessageStatus::Ok,
        ),
        &ConnectSupportsFeatureArgs {
            feature: feature::PROGRAM_KEEPALIVE,
        },
    )
    .unwrap();
    raw.write_all(&probe).unwrap();
    let started = Instant::now();
    let mut frames = FrameReader::new(raw.try_clone().unwrap());
    let reply = frames.read_message().unwrap().unwrap();
    assert_eq!(reply.header.kind, MessageType::Reply);
    let mut pings = 0;
    while let Some(m) = frames.read_message().unwrap() {
        assert!(m.header.is_keepalive(KEEPALIVE_PROC_PING), "{m:?}");
        pings += 1;
    }
    assert_eq!(pings, 5);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(started.elapsed() < LIMIT);
    // The well-behaved client is unaffected.
    assert!(lookup(&client, "isolated").is_ok());
    let deadline = Instant::now() + LIMIT;
    while srv.results.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        srv.results.lock().unwrap().as_slice(),
        ["connection closed due to keepalive timeout"]
    );
}

#[test]
fn server_answers_raw_ping_with_pong() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let mut raw = UnixStream::connect(&srv.socket).unwrap();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    raw.write_all(&encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &()).unwrap())
        .unwrap();
    let mut frames = FrameReader::new(raw);
    let m = frames.read_message().unwrap().unwrap();
    assert!(m.header.is_keepalive(KEEPALIVE_PROC_PONG));
    assert_eq!(m.header.kind, MessageType::Message);
    assert_eq!(m.header.serial, 0);
    assert!(m.body.is_empty());
}

#[test]
fn events_arrive_while_a_call_is_in_flight() {
    let driver = FakeDriver::standard();
    let srv = TestServer::start(driver.clone(), ServeOptions::default());
    let client = Arc::new(Client::connect_unix(&srv.socket, &options()).unwrap());
    let events = client.subscribe_events();
    let reg: ConnectNetworkEventRegisterAnyRet = client
        .call(
            Procedure::ConnectNetworkEventRegisterAny,
            &ConnectNetworkEventRegisterAnyArgs {
                event_id: network_event::ID_LIFECYCLE,
                net: None,
            },
        )
        .unwrap();

    let net = lookup(&client, "isolated").unwrap().net;
    *driver.xml_delay.lock().unwrap() = Some(Duration::from_millis(1500));
    let done = Arc::new(AtomicBool::new(false));
    let slow = {
        let client = client.clone();
        let net = net.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let r: Result<XmlRet, _> = client.call(
                Procedure::NetworkGetXmlDesc,
                &NetworkGetXmlDescArgs { net, flags: 0 },
            );
            done.store(true, Ordering::Release);
            r
        })
    };
    // Let the slow call reach the server, then push an event from another
    // thread through the connection's EventSink.
    std::thread::sleep(Duration::from_millis(100));
    let snapshot = driver.networks.lock().unwrap()[1].clone();
    driver.emit(&snapshot, network_event::STARTED);
    let ev = events.recv_timeout(LIMIT).expect("event");
    assert!(
        !done.load(Ordering::Acquire),
        "the event should arrive before the slow reply"
    );
    match ev {
        Event::NetworkEventLifecycle(m) => {
            assert_eq!(m.callback_id, reg.callback_id);
            assert_eq!(m.net, net);
            assert_eq!(m.event, network_event::STARTED);
        }
        other => panic!("unexpected event {other:?}"),
    }
    let xml = slow.join().unwrap().unwrap();
    assert!(xml.xml.contains("<name>isolated</name>"));
    *driver.xml_delay.lock().unwrap() = None;

    // Events caused by this client's own calls arrive too.
    client
        .call::<_, ()>(Procedure::NetworkCreate, &NetworkArgs { net: net.clone() })
        .unwrap();
    match events.recv_timeout(LIMIT).expect("event") {
        Event::NetworkEventLifecycle(m) => assert_eq!(m.event, network_event::STARTED),
        other => panic!("unexpected event {other:?}"),
    }

    client
        .call::<_, ()>(
            Procedure::ConnectNetworkEventDeregisterAny,
            &ConnectNetworkEventDeregisterAnyArgs {
                callback_id: reg.callback_id,
            },
        )
        .unwrap();
    assert_eq!(driver.registration_count(), 0);
}

#[test]
fn concurrent_calls_from_many_threads() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let client = Arc::new(Client::connect_unix(&srv.socket, &options()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let name = if i % 2 == 0 { "default" } else { "isolated" };
                    let r = lookup(&client, name).unwrap();
                    assert_eq!(r.net.name, name);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let serials = srv.driver.serials.lock().unwrap().clone();
    let mut sorted = serials.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), serials.len(), "serials must be unique");
}

fn raw_open(srv: &TestServer) -> UnixStream {
    let s = UnixStream::connect(&srv.socket).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s
}

/// Reads until the server closes the stream; true when it did so in time.
fn closed_by_server(mut s: UnixStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn garbage_frames_close_only_that_connection() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let good = Client::connect_unix(&srv.socket, &options()).unwrap();

    let cases: Vec<Vec<u8>> = vec![
        // Oversized length word.
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        // Length word smaller than a header.
        vec![0, 0, 0, 8, 0, 0, 0, 0],
        // Valid length, garbage header (unknown message type).
        {
            let mut f = encode_frame(&Header::keepalive(1), &()).unwrap();
            f[19] = 0x7f;
            f
        },
        // A plausible length followed by random bytes (the header's type
        // and status words are out of range).
        [0u8, 0, 0, 60]
            .into_iter()
            .chain((0..56u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80))
            .collect(),
        // Truncated frame then EOF.
        vec![0, 0, 0, 100, 0x20, 0, 0x80],
    ];
    for case in cases {
        let mut s = raw_open(&srv);
        s.write_all(&case).unwrap();
        if case.len() == 7 && case[3] == 100 {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        assert!(
            closed_by_server(s),
            "server kept a connection after {case:?}"
        );
    }
    // The good connection keeps working.
    assert!(lookup(&good, "default").is_ok());
    assert!(good.is_alive());

    // A message claiming the maximum size is accepted as a length, then the
    // peer vanishing mid-frame just ends that connection.
    let mut s = raw_open(&srv);
    s.write_all(&(16_777_220u32).to_be_bytes()).unwrap();
    drop(s);
    assert!(lookup(&good, "isolated").is_ok());
}

#[test]
fn wrong_program_and_status_get_error_replies() {
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let mut s = raw_open(&srv);
    let bad_prog = Header {
        program: 0x1234,
        version: 1,
        procedure: 1,
        kind: MessageType::Call,
        serial: 7,
        status: MessageStatus::Ok,
    };
    s.write_all(&encode_frame(&bad_prog, &()).unwrap()).unwrap();
    let bad_status = Header::remote(66, MessageType::Call, 8, MessageStatus::Error);
    s.write_all(&encode_frame(&bad_status, &()).unwrap())
        .unwrap();
    let mut frames = FrameReader::new(s.try_clone().unwrap());
    let m: Message = frames.read_message().unwrap().unwrap();
    assert_eq!(m.header.serial, 7);
    assert_eq!(m.header.program, 0x1234);
    assert_eq!(m.header.status, MessageStatus::Error);
    let e = RemoteError::from_xdr(&m.body).unwrap();
    assert_eq!(e.text(), "Cannot find program 4660 version 1");
    let m = frames.read_message().unwrap().unwrap();
    assert_eq!(m.header.serial, 8);
    let e = RemoteError::from_xdr(&m.body).unwrap();
    assert_eq!(e.text(), "Unexpected message status 1");
}

#[test]
fn client_over_plain_io_streams() {
    // The client and server over a pair of byte streams, as through a
    // tunnel process: the server side uses serve_io.
    let driver = FakeDriver::standard();
    let (a, b) = UnixStream::pair().unwrap();
    let server = {
        let driver = driver.clone();
        let r = b.try_clone().unwrap();
        std::thread::spawn(move || {
            virtnet_rpc::serve_io(r, b, None, &*driver, &ServeOptions::default())
        })
    };
    let r = a.try_clone().unwrap();
    let client = Client::from_io(r, a, &options()).unwrap();
    assert_eq!(lookup(&client, "default").unwrap().net.name, "default");
    client.ping(LIMIT).unwrap();
    client.close().unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn client_through_a_tunnel_process() {
    // A child process relaying stdin/stdout to the server socket stands in
    // for `ssh host virtnet tunnel`.
    let python = "/usr/bin/python3";
    if !std::path::Path::new(python).exists() {
        eprintln!("skipped: {python} is not installed");
        return;
    }
    let relay = "import socket, sys, threading\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.connect(sys.argv[1])\n\
                 def up():\n\
                 \x20   while True:\n\
                 \x20       b = sys.stdin.buffer.read1(65536)\n\
                 \x20       if not b:\n\
                 \x20           s.shutdown(socket.SHUT_WR)\n\
                 \x20           return\n\
                 \x20       s.sendall(b)\n\
                 threading.Thread(target=up, daemon=True).start()\n\
                 while True:\n\
                 \x20   b = s.recv(65536)\n\
                 \x20   if not b:\n\
                 \x20       break\n\
                 \x20   sys.stdout.buffer.write(b)\n\
                 \x20   sys.stdout.buffer.flush()\n\
                 sys.stdout.flush()\n\
                 import os\n\
                 os._exit(0)\n";
    let srv = TestServer::start(FakeDriver::standard(), ServeOptions::default());
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-c", relay]).arg(&srv.socket);
    let client = Client::connect_command(cmd, &options()).unwrap();
    assert!(client.features().keepalive);
    assert_eq!(lookup(&client, "isolated").unwrap().net.name, "isolated");
    client.ping(LIMIT).unwrap();
    let events = client.subscribe_events();
    let _: ConnectNetworkEventRegisterAnyRet = client
        .call(
            Procedure::ConnectNetworkEventRegisterAny,
            &ConnectNetworkEventRegisterAnyArgs {
                event_id: network_event::ID_LIFECYCLE,
                net: None,
            },
        )
        .unwrap();
    let net = lookup(&client, "isolated").unwrap().net;
    client
        .call::<_, ()>(Procedure::NetworkCreate, &NetworkArgs { net })
        .unwrap();
    assert!(matches!(
        events.recv_timeout(LIMIT),
        Ok(Event::NetworkEventLifecycle(_))
    ));
    client.close().unwrap();
    assert!(srv.wait_disconnected(1, LIMIT));
}

#[test]
fn busy_polling_connections_answer_calls_early_and_late_and_see_hangups() {
    let srv = TestServer::start(
        FakeDriver::standard(),
        ServeOptions {
            busy_poll: Duration::from_millis(5),
            ..ServeOptions::default()
        },
    );
    let client = Client::connect_unix(&srv.socket, &options()).unwrap();
    // Back to back: each call lands while the connection still polls.
    for _ in 0..50 {
        assert_eq!(lookup(&client, "default").unwrap().net.name, "default");
    }
    // After the polling window: the blocking read takes it.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(lookup(&client, "default").unwrap().net.name, "default");
    // A hangup while polling ends the connection.
    drop(client);
    assert!(srv.wait_disconnected(1, LIMIT));
}
