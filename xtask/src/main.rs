//! Project automation for aiox, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`).
//!
//! Tasks live in their own modules (`bench`, ...); shared helpers for running
//! commands, finding and installing tools, and Python venvs are in `util`.

#![forbid(unsafe_code)]

mod bench;
mod interop;
mod util;

const HELP: &str = "\
cargo xtask <task> [args]

Tasks:
  bench    benchmark the `hello` example against peer servers
           (`cargo xtask bench --help` for options)
  interop  run the examples against curl, h2load, aiohttp and httpx, and the
           fetch example against httpbin, hypercorn and tinyproxy
           (`cargo xtask interop [server|client]` for one half)
  help     this text";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprintln!("{HELP}");
        std::process::exit(2);
    };
    let result = match task.as_str() {
        "bench" => bench::run(rest),
        "interop" => interop::run(rest),
        "help" | "-h" | "--help" => {
            println!("{HELP}");
            Ok(())
        }
        other => {
            eprintln!("unknown task {other:?}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
