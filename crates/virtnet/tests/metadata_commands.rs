//! `net-desc`, `net-metadata` and metadata-change events, which libvirt
//! 9.0 cannot serve, against a small in-process server speaking the
//! remote protocol with newer libvirt's semantics.

use std::collections::HashMap;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use virtnet_rpc::protocol::{
    self, AuthListRet, ConnectNetworkEventRegisterAnyRet, ConnectSupportsFeatureRet,
    NetworkEventCallbackMetadataChangeMsg, NetworkGetMetadataRet, NetworkRet, NonnullNetwork,
    metadata_type,
};
use virtnet_rpc::server::{CallContext, Handler, ServeOptions, serve_connection};
use virtnet_rpc::{Call, ErrorCode, ErrorDomain, Event, RemoteError, Reply};

const UUID: [u8; 16] = [0xa9; 16];

#[derive(Default)]
struct Driver {
    /// (kind, uri) -> value.
    metadata: Mutex<HashMap<(i32, String), String>>,
}

fn beta() -> NonnullNetwork {
    NonnullNetwork {
        name: "beta".into(),
        uuid: UUID,
    }
}

impl Handler for Driver {
    fn call(&self, ctx: &mut CallContext<'_>, call: Call) -> Result<Reply, RemoteError> {
        Ok(match call {
            Call::ConnectOpen(_) => Reply::ConnectOpen(()),
            Call::ConnectClose(()) => Reply::ConnectClose(()),
            Call::AuthList(()) => Reply::AuthList(AuthListRet {
                types: vec![protocol::auth::NONE],
            }),
            Call::ConnectSupportsFeature(_) => {
                Reply::ConnectSupportsFeature(ConnectSupportsFeatureRet { supported: 1 })
            }
            Call::NetworkLookupByName(a) if a.name == "beta" => {
                Reply::NetworkLookupByName(NetworkRet { net: beta() })
            }
            Call::NetworkLookupByName(a) => return Err(RemoteError::no_network_name(&a.name)),
            Call::NetworkGetMetadata(a) => {
                let key = (a.kind, a.uri.clone().unwrap_or_default());
                match self
                    .metadata
                    .lock()
                    .map_err(|_| RemoteError::rpc("lock"))?
                    .get(&key)
                {
                    Some(v) => Reply::NetworkGetMetadata(NetworkGetMetadataRet {
                        metadata: v.clone(),
                    }),
                    None => {
                        return Err(RemoteError::new(
                            ErrorCode::NO_NETWORK_METADATA,
                            ErrorDomain::NETWORK,
                            "Requested metadata element is not present",
                        ));
                    }
                }
            }
            Call::NetworkSetMetadata(a) => {
                let key = (a.kind, a.uri.clone().unwrap_or_default());
                let mut md = self.metadata.lock().map_err(|_| RemoteError::rpc("lock"))?;
                match a.metadata {
                    Some(v) if !v.is_empty() => {
                        md.insert(key, v);
                    }
                    _ => {
                        md.remove(&key);
                    }
                }
                Reply::NetworkSetMetadata(())
            }
            Call::ConnectNetworkEventRegisterAny(a) => {
                let sink = ctx.events.clone();
                let kind = a.event_id;
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    if kind == 1 {
                        let _ = sink.send(&Event::NetworkEventCallbackMetadataChange(
                            NetworkEventCallbackMetadataChangeMsg {
                                callback_id: 7,
                                net: beta(),
                                kind: metadata_type::ELEMENT,
                                nsuri: Some("http://example.org/x".into()),
                            },
                        ));
                    }
                });
                Reply::ConnectNetworkEventRegisterAny(ConnectNetworkEventRegisterAnyRet {
                    callback_id: 7,
                })
            }
            Call::ConnectNetworkEventDeregisterAny(_) => {
                Reply::ConnectNetworkEventDeregisterAny(())
            }
            other => {
                return Err(RemoteError::no_support(other.procedure().api_name()));
            }
        })
    }
}

struct Server {
    dir: PathBuf,
    socket: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Server {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("virtnet-md-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let driver = Arc::new(Driver::default());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let driver = driver.clone();
            std::thread::spawn(move || {
                let _ = serve_connection(stream, driver.as_ref(), &ServeOptions::default());
            });
        }
    });
    Server { dir, socket }
}

fn virtnet(server: &Server, args: &[&str]) -> Output {
    let uri = format!("virtnet:///system?socket={}", server.socket.display());
    Command::new(env!("CARGO_BIN_EXE_virtnet"))
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .expect("run virtnet")
}

fn check(server: &Server, args: &[&str], rc: i32, stdout: &str, stderr: &str) {
    let out = virtnet(server, args);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(rc), stdout, stderr),
        "{args:?}"
    );
}

#[test]
fn description_title_and_metadata() {
    let s = start();
    check(
        &s,
        &["net-desc", "beta"],
        0,
        "No description for network: beta\n",
        "",
    );
    check(
        &s,
        &["net-desc", "beta", "--title"],
        0,
        "No title for network: beta\n",
        "",
    );
    check(
        &s,
        &["net-desc", "beta", "The", "second", "network"],
        0,
        "Network description updated successfully\n",
        "",
    );
    check(&s, &["net-desc", "beta"], 0, "The second network\n", "");
    check(
        &s,
        &["net-desc", "--title", "beta", "--new-desc", "Beta"],
        0,
        "Network title updated successfully\n",
        "",
    );
    check(&s, &["net-desc", "beta", "--title"], 0, "Beta\n", "");
    check(&s, &["-q", "net-desc", "beta", "--title"], 0, "Beta", "");
    check(
        &s,
        &["net-desc", "beta", "--current", "--config"],
        1,
        "\n",
        "error: Options --current and --config are mutually exclusive\n",
    );
    check(
        &s,
        &["net-desc", "nosuch"],
        1,
        "\n",
        "error: failed to get network 'nosuch'\n\
         error: Network not found: no network with matching name 'nosuch'\n",
    );
    check(
        &s,
        &["net-metadata", "beta", "http://example.org/x"],
        1,
        "\n",
        "error: metadata not found: Requested metadata element is not present\n",
    );
    check(
        &s,
        &[
            "net-metadata",
            "beta",
            "http://example.org/x",
            "--set",
            "<a/>",
        ],
        1,
        "\n",
        "error: namespace key is required when modifying metadata\n",
    );
    check(
        &s,
        &[
            "net-metadata",
            "beta",
            "http://example.org/x",
            "--key",
            "x",
            "--set",
            "<a b='1'/>",
        ],
        0,
        "Metadata modified\n\n",
        "",
    );
    check(
        &s,
        &["net-metadata", "beta", "--uri", "http://example.org/x"],
        0,
        "<a b='1'/>\n\n",
        "",
    );
    check(
        &s,
        &[
            "net-metadata",
            "beta",
            "http://example.org/x",
            "--remove",
            "--edit",
        ],
        1,
        "\n",
        "error: Options --remove and --edit are mutually exclusive\n",
    );
    check(
        &s,
        &["net-metadata", "beta", "http://example.org/x", "--remove"],
        0,
        "Metadata removed\n\n",
        "",
    );
    check(
        &s,
        &["net-metadata", "beta"],
        1,
        "",
        "error: command 'net-metadata' requires <uri> option\n",
    );
}

#[test]
fn metadata_change_events() {
    let s = start();
    check(
        &s,
        &["net-event", "--event", "metadata-change", "--timeout", "10"],
        0,
        "event 'metadata-change' for network beta: type element, uri http://example.org/x\n\
         events received: 1\n\n",
        "",
    );
}
