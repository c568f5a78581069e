//! `virtnet net-lint` over libvirt's own test corpus: network XML round
//! trips (plain and `--inactive`), definitions that must be refused, the
//! dnsmasq conf and hostsfile of each network, and networkport round
//! trips, all through the built binary.

use std::path::Path;
use std::process::{Command, Output};

use virtnet_corpus::{
    NETWORKPORT, NETWORKXML2CONF, NETWORKXML2XML, NETWORKXML2XML_INACTIVE,
    NETWORKXML2XML_MUST_FAIL, resolve,
};

fn lint(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .arg("net-lint")
        .args(args)
        .arg(file)
        .env_remove("VIRTNET_DEFAULT_URI")
        .output()
        .expect("run virtnet")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(resolve(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn libvirt_corpus_through_net_lint() {
    let Some(dir) = virtnet_corpus::dir() else {
        eprintln!("{}", virtnet_corpus::MISSING);
        return;
    };
    let mut failures = Vec::new();
    let mut checked = 0;

    for name in NETWORKXML2XML {
        let input = resolve(&dir.join("networkxml2xmlin").join(format!("{name}.xml")));
        let want = read(&dir.join("networkxml2xmlout").join(format!("{name}.xml")));
        let args: &[&str] = if NETWORKXML2XML_INACTIVE.contains(name) {
            &["--inactive"]
        } else {
            &[]
        };
        let out = lint(args, &input);
        checked += 1;
        if !out.status.success() || text(&out.stdout) != want {
            failures.push(format!(
                "xml2xml {name}: status {:?}\n--- want\n{want}--- got\n{}{}",
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
    }

    for (name, _) in NETWORKXML2XML_MUST_FAIL {
        let input = dir.join("networkxml2xmlin").join(format!("{name}.xml"));
        let out = lint(&[], &input);
        checked += 1;
        let err = text(&out.stderr);
        if out.status.code() != Some(1) || !out.stdout.is_empty() || !err.starts_with("error: ") {
            failures.push(format!(
                "must-fail {name}: status {:?} stdout {:?} stderr {err:?}",
                out.status.code(),
                text(&out.stdout)
            ));
        }
    }

    let state = ["--state-dir", "/var/lib/libvirt/dnsmasq"];
    for name in NETWORKXML2CONF {
        let input = resolve(&dir.join("networkxml2confdata").join(format!("{name}.xml")));
        let want_conf = read(&dir.join("networkxml2confdata").join(format!("{name}.conf")));
        let out = lint(&["--dnsmasq-conf", state[0], state[1]], &input);
        checked += 1;
        if !out.status.success() || text(&out.stdout) != want_conf {
            failures.push(format!(
                "conf {name}: status {:?}\n--- want\n{want_conf}--- got\n{}{}",
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        let hosts = dir
            .join("networkxml2confdata")
            .join(format!("{name}.hostsfile"));
        let want_hosts = if hosts.exists() {
            read(&hosts)
        } else {
            String::new()
        };
        let out = lint(&["--dnsmasq-hostsfile", state[0], state[1]], &input);
        checked += 1;
        if !out.status.success() || text(&out.stdout) != want_hosts {
            failures.push(format!(
                "hostsfile {name}: status {:?}\n--- want\n{want_hosts}--- got\n{}{}",
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
    }

    for name in NETWORKPORT {
        let input = resolve(
            &dir.join("virnetworkportxml2xmldata")
                .join(format!("{name}.xml")),
        );
        let want = read(&input);
        let out = lint(&["--port"], &input);
        checked += 1;
        if !out.status.success() || text(&out.stdout) != want {
            failures.push(format!(
                "port {name}: status {:?}\n--- want\n{want}--- got\n{}{}",
                out.status.code(),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{checked} net-lint checks match libvirt's corpus");
}

#[test]
fn lint_errors_and_options() {
    let dir = std::env::temp_dir().join(format!("virtnet-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<network><name>bad</name><forward mode='bogus'/></network>",
    )
    .expect("write");
    let out = lint(&["--validate"], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: unsupported configuration: unknown forwarding type 'bogus'\n"
    );
    let missing = dir.join("missing.xml");
    let out = lint(&[], &missing);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: Failed to open file '{}': No such file or directory\n",
            missing.display()
        )
    );
    let good = dir.join("good.xml");
    std::fs::write(
        &good,
        "<network><name>n</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
         <forward mode='nat'/><ip address='10.0.0.1' prefix='24'><dhcp>\
         <host mac='52:54:00:00:00:01' ip='10.0.0.5'/></dhcp></ip></network>",
    )
    .expect("write");
    let out = lint(&[], &good);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "<network>\n  <name>n</name>\n  <uuid>11111111-2222-3333-4444-555555555555</uuid>\n  \
         <forward mode='nat'/>\n  <bridge stp='on' delay='0'/>\n  <ip address='10.0.0.1' prefix='24'>\n    <dhcp>\n      \
         <host mac='52:54:00:00:00:01' ip='10.0.0.5'/>\n    </dhcp>\n  </ip>\n</network>\n"
    );
    let out = lint(&["--inactive", "--validate"], &good);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lint(&["--dnsmasq-hostsfile"], &good);
    // dnsmasq files need the bridge name define time fills in.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: internal error: network 'n' has no bridge name\n"
    );
    let xml = std::fs::read_to_string(&good).expect("read");
    std::fs::write(
        &good,
        xml.replace("<forward", "<bridge name='virbr7'/><forward"),
    )
    .expect("write");
    let out = lint(&["--dnsmasq-hostsfile"], &good);
    assert_eq!(text(&out.stdout), "52:54:00:00:00:01,10.0.0.5\n");
    let out = lint(&["--dnsmasq-conf"], &good);
    assert!(text(&out.stdout).contains("dhcp-hostsfile=/var/lib/virtnet/dnsmasq/n.hostsfile\n"));
    let out = lint(&["--port"], &good);
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
