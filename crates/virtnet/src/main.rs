//! `virtnet`: virsh-compatible network commands.
//!
//! Installed under other names it plays other programs' parts:
//! `virt-ssh-helper [-r] URI` (libvirt's remote helper, run by `virsh -c
//! qemu+ssh://…`) is `virtnet [-r] tunnel URI`, and `qemu-bridge-helper
//! --use-vnet --br=BR --fd=N` (QEMU's `-netdev bridge`) is `virtnet
//! qemu-bridge-helper …`.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_else(|| "virtnet".into());
    let progname = argv0.rsplit('/').next().unwrap_or("virtnet").to_owned();
    let mut args: Vec<String> = args.collect();
    // A set-user-ID copy is only ever the bridge helper, never the whole
    // command line (whatever name it is called by).
    let setuid = nix::unistd::getuid() != nix::unistd::geteuid();
    if setuid
        && !matches!(
            progname.as_str(),
            "qemu-bridge-helper" | "virtnet-bridge-helper"
        )
    {
        eprintln!("{progname}: refusing to run set-user-ID except as qemu-bridge-helper");
        std::process::exit(1);
    }
    match progname.as_str() {
        "virt-ssh-helper" => match virtnet_cli::remote::virt_ssh_helper_args(&args) {
            Ok(a) => args = a,
            Err(e) => {
                eprintln!("{progname}: {e}");
                std::process::exit(1);
            }
        },
        "qemu-bridge-helper" | "virtnet-bridge-helper" => {
            args.insert(0, "qemu-bridge-helper".into());
        }
        _ => {}
    }
    let env = virtnet_cli::Env::from_process();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    // Not locked: the edit prompt reads the terminal directly.
    let mut input = std::io::BufReader::new(std::io::stdin());
    let status = virtnet_cli::run(&progname, &args, &env, &mut out, &mut err, &mut input);
    out.flush()?;
    std::process::exit(status);
}
