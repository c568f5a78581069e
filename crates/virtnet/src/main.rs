//! `virtnet`: virsh-compatible network commands.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_else(|| "virtnet".into());
    let progname = argv0.rsplit('/').next().unwrap_or("virtnet").to_owned();
    let args: Vec<String> = args.collect();
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
