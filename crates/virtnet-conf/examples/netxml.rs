//! Parse network (or networkport) XML files and print what virtnet makes of
//! them: the formatted XML, or the error with its libvirt code.
//!
//! ```text
//! cargo run -p virtnet-conf --example netxml -- [--define] [--inactive] [--port] FILE...
//! ```
//!
//! `--define` also runs the define-time steps (uuid, MAC, bridge name with
//! a fixed random seed, validation), like `virsh net-define` followed by
//! `net-dumpxml`.

use rand::SeedableRng;
use virtnet_conf::{FormatFlags, NetworkDef, PortDef, defaults};

fn main() {
    let mut define = false;
    let mut flags = FormatFlags::ACTIVE;
    let mut port = false;
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--define" => define = true,
            "--inactive" => flags = FormatFlags::INACTIVE,
            "--port" => port = true,
            _ => files.push(a),
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                println!("== {f}\nread error: {e}");
                continue;
            }
        };
        println!("== {f}");
        if port {
            match PortDef::parse(&text) {
                Ok(p) => print!("{}", p.to_xml()),
                Err(e) => println!("error: code={} {e}", e.kind().code()),
            }
            continue;
        }
        let res = NetworkDef::parse(&text).and_then(|mut d| {
            if define {
                defaults::prepare_define_with(&mut d, &[], &mut rng)?;
            }
            Ok(d)
        });
        match res {
            Ok(d) => print!("{}", d.to_xml(flags)),
            Err(e) => println!("error: code={} {e}", e.kind().code()),
        }
    }
}
