//! The sandboxd binary: the daemon, or (as `sandboxd __sandbox-helper`) a per-sandbox helper.

use std::process::ExitCode;

use clap::Parser;
use sandboxd::config::Config;
use sandboxd::isolation::spawn::{helper_main, HELPER_ARG};
use sandboxd::isolation::zygote::{zygote_main, ZYGOTE_ARG};

fn main() -> ExitCode {
    // Decided before any thread exists: the helper clones and forks, which is only safe in a
    // single-threaded process.
    if std::env::args_os().nth(1).is_some_and(|a| a == HELPER_ARG) {
        return ExitCode::from(u8::try_from(helper_main()).unwrap_or(1));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == ZYGOTE_ARG) {
        return ExitCode::from(u8::try_from(zygote_main()).unwrap_or(1));
    }
    let cfg = Config::parse();
    if let Err(e) = cfg.validate() {
        eprintln!("sandboxd: {e}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDBOXD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandboxd: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(sandboxd::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandboxd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
