//! The command line without a daemon: option errors, connection failures,
//! help and version, through the built binary.

use std::process::{Command, Output};

fn virtnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(args)
        .env_remove("VIRTNET_DEFAULT_URI")
        .output()
        .expect("run virtnet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn parse_errors_print_virsh_messages_and_exit_1() {
    for (args, msg) in [
        (
            &["net-list", "--bogus"][..],
            "error: command 'net-list' doesn't support option --bogus\n",
        ),
        (
            &["net-info"][..],
            "error: command 'net-info' requires <network> option\n",
        ),
        (
            &["net-dumpxml", "alpha", "beta"][..],
            "error: unexpected data 'beta'\n",
        ),
        (&["bogus-cmd"][..], "error: unknown command: 'bogus-cmd'\n"),
        (
            &["--bogus"][..],
            "error: unsupported option '--bogus'. See --help.\n",
        ),
        (
            &["-c"][..],
            "error: option '-c'/'--connect' requires an argument\n",
        ),
    ] {
        let out = virtnet(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), msg, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn connection_failures() {
    // Named connection: opened first, no trailing empty line.
    let out = virtnet(&[
        "-c",
        "virtnet:///system?socket=/nonexistent/sock",
        "net-list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: Failed to connect socket to '/nonexistent/sock': No such file or directory\n"
    );
    assert!(out.stdout.is_empty());
    // Default connection: opened when the command runs, then the empty line.
    let out = Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .args(["net-list"])
        .env(
            "VIRTNET_DEFAULT_URI",
            "network:///system?socket=/nonexistent/sock",
        )
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "\n");
    let out = virtnet(&["-c", "qemu+ssh://root@far/system", "net-list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ssh transport (far) is not supported yet"));
    let out = virtnet(&["-c", "bogus", "net-list"]);
    assert_eq!(
        text(&out.stderr),
        "error: failed to connect to the hypervisor\n\
         error: no connection driver available for URI 'bogus' does not include a driver name\n"
    );
}

#[test]
fn help_and_version_need_no_daemon() {
    let out = virtnet(&["help", "net-info"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "  NAME\n    net-info - network information\n\n  SYNOPSIS\n    net-info <network>\n\n  \
         DESCRIPTION\n    Returns basic information about the network\n\n  OPTIONS\n    \
         [--network] <string>  network name or uuid\n\n\n"
    );
    let out = virtnet(&["help", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: command or command group 'bogus' doesn't exist\n"
    );
    let out = virtnet(&["-v"]);
    assert_eq!(
        text(&out.stdout),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = virtnet(&["help", "network"]);
    assert!(
        text(&out.stdout).starts_with(" Networking (help keyword 'network'):\n    net-autostart ")
    );
    let out = virtnet(&["-h"]);
    assert!(text(&out.stdout).contains("net-lint"));
}
