//! The `rctl` command: argument parsing and output; the work is done by
//! the library ([`rctl`]) and the engine.
//!
//! - `cli::remote`: verbs that talk to a registry only (login, logout,
//!   tags, catalog, manifest, digest, delete, inspect of a remote image).
//! - `cli::images`: verbs on the local store (pull, push, images, tag, rmi).
//! - `cli::run`: run, create, start.
//! - `cli::containers`: the other container verbs, and volumes.
//!
//! The same binary is also the container's monitor and init (hidden
//! helper modes chosen by the first argument, before any parsing or
//! thread is started).

mod cli;

use clap::Parser;
use rengine::runtime::{init, monitor, INIT_ARG, MONITOR_ARG};
use std::process::ExitCode;

fn helper_mode() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    let mode = args.next()?;
    if mode == INIT_ARG {
        init::main();
    }
    if mode != MONITOR_ARG {
        return None;
    }
    let (Some(root), Some(id)) = (args.next(), args.next()) else {
        eprintln!("rctl: usage: {MONITOR_ARG} ROOT ID [--detached]");
        return Some(125);
    };
    let attach = if args.next().is_some_and(|a| a == "--detached") {
        monitor::Attach::Detached
    } else {
        monitor::Attach::Foreground
    };
    Some(monitor::main(
        std::path::Path::new(&root),
        &id.to_string_lossy(),
        attach,
    ))
}

fn main() -> ExitCode {
    if let Some(code) = helper_mode() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = cli::Cli::parse();
    let filter = if args.debug { "debug" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    let failure = cli::failure_code(&args);
    match cli::run(args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let code = match e.downcast_ref::<cli::ExitError>() {
                Some(exit) => exit.code,
                None => failure,
            };
            eprintln!("Error: {e}");
            ExitCode::from(code.clamp(0, 255) as u8)
        }
    }
}
