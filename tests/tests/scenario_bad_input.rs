//! Bad input gets a clean error, in libvirt's words, and changes nothing.
//!
//! The cases live in `tests/data/scenarios/bad_input/` (see its README):
//! each is a client command line and the stderr virsh prints against
//! libvirt's own network driver in the same situation. Both clients run
//! every case; after each, `net-list --all`, the host's links, addresses,
//! routes, nftables ruleset (handles included), the daemon's files and the
//! dnsmasq processes are exactly as before.
//!
//! Garbage written raw to the daemon's socket closes that connection at
//! most: other clients are served during and after.

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scenario_common::{Client, Host, data, net_list, parse_net_list, require_all, row};
use virtnet_tests::{Veth, or_skip};

/// What a case expects on stderr.
enum Expect {
    Exact(String),
    Start(String),
}

struct Case {
    name: String,
    read_only: bool,
    args: Vec<String>,
    expect: Expect,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "args"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let mut args: Vec<String> = std::fs::read_to_string(&p)
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let read_only = args.first().is_some_and(|a| a == "--read-only");
            if read_only {
                args.remove(0);
            }
            let exact = dir.join(format!("{name}.err"));
            let start = dir.join(format!("{name}.err-start"));
            let expect = if exact.exists() {
                Expect::Exact(std::fs::read_to_string(exact).unwrap())
            } else {
                Expect::Start(
                    std::fs::read_to_string(&start)
                        .unwrap_or_else(|e| panic!("{}: {e}", start.display())),
                )
            };
            Case {
                name,
                read_only,
                args,
                expect,
            }
        })
        .collect()
}

fn ro_uri(host: &Host) -> String {
    format!(
        "network:///system?socket={}",
        host.daemon.run_dir().join("virtnetd-sock-ro").display()
    )
}

/// The situation of the cases: `alpha` defined and running, `delta`
/// defined, interface `vnup0` holding 10.94.0.7/24.
fn prepare(host: &Host, client: Client, dir: &Path) -> Veth {
    let up = Veth::create(&host.ns, "vnup0", &host.ns, "vnup1").unwrap();
    host.ns
        .ip(&["addr", "add", "10.94.0.7/24", "dev", "vnup0"])
        .unwrap();
    let uri = host.daemon.uri();
    for args in [
        &["net-define", "alpha.xml"][..],
        &["net-start", "alpha"],
        &["net-define", "delta.xml"],
    ] {
        let out = client.run_at(&uri, args, Some(dir));
        assert!(out.success(), "{args:?}: {}{}", out.stdout, out.stderr);
    }
    up
}

fn bad_input(client: Client) {
    or_skip!(require_all(Some(client)));
    let started = Instant::now();
    let host = or_skip!(Host::start(&[]));
    let dir = data("bad_input");
    let _up = prepare(&host, client, &dir);
    let rw = host.daemon.uri();
    let ro = ro_uri(&host);

    let list = client.ok(&host.daemon, &["net-list", "--all"]);
    let rows = parse_net_list(&list);
    assert_eq!(row(&rows, "alpha").state, "active");
    assert_eq!(row(&rows, "delta").state, "inactive");
    // Reading through the read-only socket works.
    let out = client.run_at(&ro, &["net-list", "--all"], None);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, list);
    let before = host.snapshot();

    let cases = cases(&dir);
    assert!(cases.len() >= 18, "cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let uri = if case.read_only { &ro } else { &rw };
        let out = client.run_at(uri, &args, Some(&dir));
        let mut problems = Vec::new();
        if out.code() != Some(1) {
            problems.push(format!("exit status {:?}, want 1", out.code()));
        }
        match &case.expect {
            Expect::Exact(want) if out.stderr != *want => {
                problems.push(format!("stderr\n{}\nwant\n{want}", out.stderr));
            }
            Expect::Start(want) if !out.stderr.starts_with(want.as_str()) => {
                problems.push(format!(
                    "stderr\n{}\nwant it to start with\n{want}",
                    out.stderr
                ));
            }
            _ => {}
        }
        if !out.stdout.trim().is_empty() {
            problems.push(format!("stdout {:?}", out.stdout));
        }
        let now = client.ok(&host.daemon, &["net-list", "--all"]);
        if now != list {
            problems.push(format!("net-list --all changed:\n{now}"));
        }
        let diff = before.diff(&host.snapshot());
        if !diff.is_empty() {
            problems.push(format!("the host changed:\n{diff}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}{}):\n  {}",
                case.name,
                if case.read_only { "read-only: " } else { "" },
                args.join(" "),
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{client:?}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{client:?}: {} bad-input cases in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn bad_input_with_virtnet() {
    bad_input(Client::Virtnet);
}

#[test]
fn bad_input_with_virsh() {
    bad_input(Client::Virsh);
}

/// libvirt's remote program and protocol version.
const REMOTE_PROGRAM: u32 = 0x2000_8086;
const PROTOCOL_VERSION: u32 = 1;

/// A frame: length word, then header (program, version, procedure, type
/// call, serial, status ok) and `payload`.
fn frame(program: u32, procedure: u32, payload: &[u8]) -> Vec<u8> {
    let len = 28 + payload.len() as u32;
    let mut f = Vec::new();
    for w in [len, program, PROTOCOL_VERSION, procedure, 0, 1, 0] {
        f.extend_from_slice(&w.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// Kinds of garbage, each sent on a fresh connection.
fn garbage(seed: &mut u64) -> Vec<Vec<u8>> {
    let mut noise = vec![0u8; 4096];
    for b in noise.iter_mut() {
        // xorshift: reproducible noise without a dependency.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *b = (*seed >> 24) as u8;
    }
    vec![
        // A length far beyond the protocol's maximum.
        [&0xffff_ffffu32.to_be_bytes()[..], &noise[..64]].concat(),
        // A length smaller than the length word itself.
        [&3u32.to_be_bytes()[..], &noise[..64]].concat(),
        // A well-formed frame for a program that does not exist.
        frame(0xdead_beef, 1, &noise[..16]),
        // libvirt's program, a procedure that does not exist.
        frame(REMOTE_PROGRAM, 999_999, &noise[..16]),
        // CONNECT_OPEN with a payload that does not decode.
        frame(REMOTE_PROGRAM, 1, &noise[..37]),
        // DEFINE_XML before CONNECT_OPEN, with a huge string length inside.
        frame(REMOTE_PROGRAM, 41, &0x7fff_fff0u32.to_be_bytes()),
        // Plain noise.
        noise,
    ]
}

/// Sends `bytes` on a new connection and reads until the daemon closes it
/// or 2 s pass; returns whether it closed.
fn send_garbage(socket: &Path, bytes: &[u8]) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.write_all(bytes);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn garbage_on_the_socket_does_not_stop_the_daemon() {
    or_skip!(require_all(None));
    let started = Instant::now();
    let mut host = or_skip!(Host::start(&[]));
    let dir = data("bad_input");
    let _up = prepare(&host, Client::Virtnet, &dir);
    let socket = host.daemon.socket_path();
    let before = host.snapshot();
    let clients: Vec<Client> = Client::ALL
        .into_iter()
        .filter(|c| c.check().is_ok())
        .collect();
    let check_served = |host: &Host| {
        for &c in &clients {
            let rows = net_list(c, &host.daemon);
            assert_eq!(row(&rows, "alpha").state, "active", "{c:?}");
        }
    };

    // A connection that stops in the middle of a frame.
    let mut stalled = UnixStream::connect(&socket).unwrap();
    stalled.write_all(&[0, 0, 0, 100, 0x20, 0, 0x80]).unwrap();

    // Garbage on many connections while other clients work.
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let closed_oversized = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (stop, sent, closed_oversized, socket) = (&stop, &sent, &closed_oversized, &socket);
            s.spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15 ^ t;
                while !stop.load(Ordering::Relaxed) {
                    for (i, g) in garbage(&mut seed).iter().enumerate() {
                        let closed = send_garbage(socket, g);
                        if i == 0 && closed {
                            closed_oversized.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for _ in 0..3 {
            check_served(&host);
        }
        // Let at least one full round of every kind go through.
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Relaxed) < 14 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        check_served(&host);
        stop.store(true, Ordering::Relaxed);
    });
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent >= 14, "only {sent} garbage connections in 20 s");
    assert!(
        closed_oversized.load(Ordering::Relaxed) > 0,
        "an oversized frame should make the daemon close the connection"
    );

    // Still there, still serving, nothing changed.
    assert!(
        host.daemon.is_running(),
        "virtnetd died:\n{}",
        host.daemon.log()
    );
    check_served(&host);
    drop(stalled);
    check_served(&host);
    assert!(host.daemon.is_running());
    let diff = before.diff(&host.snapshot());
    assert!(diff.is_empty(), "garbage changed the host:\n{diff}");
    let log = host.daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{sent} garbage connections, daemon fine, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
