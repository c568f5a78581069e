//! Network events, fanned out to several clients at once: Debian's
//! `virsh net-event --loop`, a libvirt-python client running libvirt's
//! default event loop in a thread (`tests/data/scenarios/live/events/listen.py`,
//! on the read-only socket) and `virtnet net-event --loop`, each with and
//! without `--network`. Every one sees the lifecycle of the networks it
//! asked for — Defined, Started, Stopped, Undefined — in order, and nothing
//! else; `net-desc` and `net-metadata` changes arrive as metadata-change
//! events (virtnet's CLI: virsh 9.0 has no such event).

// Test code: a failing step should panic right there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod scenario_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use scenario_common::{Client, Host, data, require_all};
use virtnet_tests::process::SpawnOpts;
use virtnet_tests::{Proc, or_skip};

/// A client printing events, and how to read its lines.
struct Listener {
    label: &'static str,
    proc: Proc,
    /// Output before this offset belongs to the warm-up.
    from: usize,
}

impl Listener {
    fn spawn(label: &'static str, program: PathBuf, args: Vec<String>) -> Listener {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args);
        let proc = Proc::spawn(
            cmd,
            SpawnOpts {
                label: Some(label.to_string()),
                stdin: true,
                ..Default::default()
            },
        )
        .unwrap();
        Listener {
            label,
            proc,
            from: 0,
        }
    }

    /// The events printed since the warm-up, as `NAME WHAT` lines: virsh
    /// and virtnet print `event 'lifecycle' for network NAME: WHAT` and
    /// `event 'metadata-change' for network NAME: type T, uri U`; the
    /// Python client prints `NAME WHAT`.
    fn events_since(&self, from: usize) -> Vec<String> {
        self.proc
            .stdout()
            .get(from..)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                if let Some(rest) = l
                    .strip_prefix("event 'lifecycle' for network ")
                    .or_else(|| l.strip_prefix("event 'metadata-change' for network "))
                {
                    let (name, what) = rest.split_once(": ")?;
                    Some(format!("{name} {what}"))
                } else if l == "registered" || l.starts_with("events received") {
                    None
                } else {
                    Some(l.to_string())
                }
            })
            .collect()
    }

    fn events(&self) -> Vec<String> {
        self.events_since(self.from)
    }
}

fn wait_all(
    listeners: &[Listener],
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Listener) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if listeners.iter().all(&ok) {
            return true;
        }
        if Instant::now() >= deadline {
            eprintln!("still waiting for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn clients_see_events_in_order() {
    or_skip!(require_all(Some(Client::Virsh)));
    or_skip!(require_all(Some(Client::Virtnet)));
    let python = PathBuf::from("/usr/bin/python3");
    let has_libvirt_python = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import libvirt"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_libvirt_python {
        eprintln!("skipped: /usr/bin/python3 with libvirt-python (python3-libvirt) is needed");
        return;
    }
    let host = or_skip!(Host::start(&[]));
    let d = &host.daemon;
    let uri = d.uri();
    let ro_uri = format!("{uri}-ro");
    let eva = data("live/events/eva.xml");
    let evb = data("live/events/evb.xml");
    let eva = eva.to_str().unwrap();
    let evb = evb.to_str().unwrap();
    Client::Virtnet.ok(d, &["net-define", eva]);

    let virsh = Client::Virsh.program().unwrap();
    let virtnet = Client::Virtnet.program().unwrap();
    let listen = data("live/events/listen.py").display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut lifecycle = vec![
        Listener::spawn(
            "virsh",
            virsh.clone(),
            s(&["-c", &uri, "net-event", "--loop", "--event", "lifecycle"]),
        ),
        Listener::spawn("python", python.clone(), s(&[&listen, &ro_uri])),
        Listener::spawn(
            "virtnet",
            virtnet.clone(),
            s(&["-c", &uri, "net-event", "--loop", "--event", "lifecycle"]),
        ),
    ];
    let mut filtered = vec![
        Listener::spawn(
            "virsh --network eva",
            virsh,
            s(&[
                "-c",
                &uri,
                "net-event",
                "--loop",
                "--event",
                "lifecycle",
                "--network",
                "eva",
            ]),
        ),
        Listener::spawn("python eva", python, s(&[&listen, &ro_uri, "eva"])),
        Listener::spawn(
            "virtnet --network eva",
            virtnet.clone(),
            s(&[
                "-c",
                &uri,
                "net-event",
                "--loop",
                "--event",
                "lifecycle",
                "--network",
                "eva",
            ]),
        ),
    ];
    let mut metadata = vec![
        Listener::spawn(
            "virtnet metadata",
            virtnet.clone(),
            s(&[
                "-c",
                &uri,
                "net-event",
                "--loop",
                "--event",
                "metadata-change",
            ]),
        ),
        Listener::spawn(
            "virtnet metadata --network eva",
            virtnet,
            s(&[
                "-c",
                &uri,
                "net-event",
                "--loop",
                "--event",
                "metadata-change",
                "--network",
                "eva",
            ]),
        ),
    ];

    // Warm-up: a listener has registered once it prints an event. Redefine
    // eva and change its description until every listener has printed the
    // latest one; then one more round, seen once by each, and from there on
    // nothing is in flight.
    let mut ready = false;
    for round in 0..40 {
        let before: Vec<usize> = lifecycle
            .iter()
            .chain(&filtered)
            .chain(&metadata)
            .map(|l| l.events_since(0).len())
            .collect();
        Client::Virtnet.ok(d, &["net-define", eva]);
        Client::Virtnet.ok(d, &["net-desc", "eva", &format!("warm-up {round}")]);
        let all: Vec<&Listener> = lifecycle.iter().chain(&filtered).chain(&metadata).collect();
        let deadline = Instant::now() + Duration::from_secs(2);
        let grew = loop {
            let grew = all
                .iter()
                .zip(&before)
                .all(|(l, n)| l.events_since(0).len() > *n);
            if grew || Instant::now() >= deadline {
                break grew;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if grew && ready {
            break;
        }
        ready = grew;
        assert!(round < 39, "the listeners did not all register");
    }
    std::thread::sleep(Duration::from_millis(300));
    for l in lifecycle
        .iter_mut()
        .chain(&mut filtered)
        .chain(&mut metadata)
    {
        l.from = l.proc.stdout().len();
    }

    // eva starts; evb lives a whole life meanwhile; eva's description,
    // title and metadata change; eva stops and goes.
    let v = Client::Virsh;
    v.ok(d, &["net-start", "eva"]);
    v.ok(d, &["net-define", evb]);
    v.ok(d, &["net-start", "evb"]);
    Client::Virtnet.ok(d, &["net-desc", "evb", "evb's description"]);
    v.ok(d, &["net-destroy", "evb"]);
    v.ok(d, &["net-undefine", "evb"]);
    Client::Virtnet.ok(d, &["net-desc", "eva", "running"]);
    Client::Virtnet.ok(d, &["net-desc", "eva", "--config", "--title", "Eva"]);
    Client::Virtnet.ok(
        d,
        &[
            "net-metadata",
            "eva",
            "http://example.org/ev/",
            "--key",
            "ev",
            "--set",
            "<ev on='yes'/>",
        ],
    );
    v.ok(d, &["net-destroy", "eva"]);
    v.ok(d, &["net-undefine", "eva"]);

    let all_lifecycle = [
        "eva Started",
        "evb Defined",
        "evb Started",
        "evb Stopped",
        "evb Undefined",
        "eva Stopped",
        "eva Undefined",
    ];
    let eva_lifecycle = ["eva Started", "eva Stopped", "eva Undefined"];
    let all_metadata = [
        "evb type description, uri (null)",
        "eva type description, uri (null)",
        "eva type title, uri (null)",
        "eva type element, uri http://example.org/ev/",
    ];
    let eva_metadata = &all_metadata[1..];
    let expect = |ls: &[Listener], want: &[&str]| {
        wait_all(ls, "the events", Duration::from_secs(10), |l| {
            l.events().len() >= want.len()
        });
        // Anything extra would have arrived by now.
        std::thread::sleep(Duration::from_millis(300));
        for l in ls {
            assert_eq!(l.events(), want, "events seen by {}", l.label);
        }
    };
    expect(&lifecycle, &all_lifecycle);
    expect(&filtered, &eva_lifecycle);
    expect(&metadata[..1], &all_metadata);
    expect(&metadata[1..], eva_metadata);
    for l in lifecycle.iter().chain(&filtered).chain(&metadata) {
        eprintln!("{}: {:?}", l.label, l.events());
    }
}
