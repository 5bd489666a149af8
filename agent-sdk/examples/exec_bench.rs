//! Exec round-trip benchmark: creates one long-lived sandbox, runs `/bin/true` in it many times
//! over one connection, and prints latency percentiles (and throughput) as one JSON line on
//! stdout. Used by `bench/exec.sh`.
//!
//! ```text
//! exec_bench [--socket PATH] [--rootfs PATH] [--sandbox ID] [--runs N] [--warmup N]
//!            [--concurrency K] [--runtime multi|current] [--cmd PATH]
//! ```
//!
//! - `--socket`: the daemon's socket (default `$SANDBOXD_SOCKET`, else
//!   `/run/sandboxd/sandboxd.sock`).
//! - `--rootfs`: host directory to use as the sandbox's `/` (default: the daemon's host rootfs).
//! - `--sandbox ID`: use this existing sandbox instead of creating (and destroying) one.
//! - `--runs` (default 1000) measured execs after `--warmup` (default 50) unmeasured ones.
//! - `--concurrency K` (default 1): K tasks share the one client and take execs from a common
//!   counter until `--runs` are done; the JSON line then also carries the throughput. With
//!   K = 1 the execs are strictly sequential.
//! - `--runtime`: tokio's multi-thread runtime (the default, as `#[tokio::main]`) or a
//!   current-thread one (every task on the calling thread: fewer cross-thread wake-ups).
//! - `--cmd` (default `/bin/true`): the command; it must exit 0.
//!
//! Each measured exec is timed from just before the request is sent to the moment its exit
//! status arrives: `sandbox.exec([cmd]).output().await`.
//!
//! ```text
//! SANDBOXD_SOCKET=/run/sandboxd/sandboxd.sock cargo run --release -p agent-sdk --example exec_bench
//! ```

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_sdk::{Client, Sandbox, SandboxBuilder};

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: exec_bench [--socket PATH] [--rootfs PATH] [--sandbox ID] [--runs N] \
[--warmup N] [--concurrency K] [--runtime multi|current] [--cmd PATH]";

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    socket: String,
    rootfs: Option<String>,
    sandbox: Option<String>,
    runs: usize,
    warmup: usize,
    concurrency: usize,
    current_thread: bool,
    cmd: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        socket: std::env::var("SANDBOXD_SOCKET")
            .unwrap_or_else(|_| "/run/sandboxd/sandboxd.sock".to_string()),
        rootfs: None,
        sandbox: None,
        runs: 1000,
        warmup: 50,
        concurrency: 1,
        current_thread: false,
        cmd: "/bin/true".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        // Both `--flag value` and `--flag=value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let number = |v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match name.as_str() {
            "--socket" => args.socket = value()?,
            "--rootfs" => args.rootfs = Some(value()?),
            "--sandbox" => args.sandbox = Some(value()?),
            "--runs" => args.runs = number(value()?)?,
            "--warmup" => args.warmup = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?,
            "--cmd" => args.cmd = value()?,
            "--runtime" => {
                args.current_thread = match value()?.as_str() {
                    "multi" => false,
                    "current" => true,
                    other => return Err(format!("--runtime: multi or current, not {other}")),
                }
            }
            _ => return Err(format!("unknown argument: {flag}\n{USAGE}")),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("exec_bench: {e}");
            std::process::exit(2);
        }
    };
    let mut builder = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("exec_bench: starting the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench(args)) {
        eprintln!("exec_bench: {e}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> Result<(), BoxError> {
    let client = Client::connect_as(&args.socket, "exec_bench").await?;
    let create_started = Instant::now();
    let (sandbox, owned) = match &args.sandbox {
        Some(id) => (client.sandbox(id.clone()), false),
        None => {
            let mut b = client.create();
            if let Some(r) = &args.rootfs {
                b = b.rootfs_path(r.clone());
            }
            (b.create().await?, true)
        }
    };
    let create_ms = ms(create_started.elapsed());
    let result = measure(&sandbox, &args).await;
    // Destroy the sandbox whatever happened (unless it was given with --sandbox).
    let destroyed = if owned {
        sandbox.destroy().await.map_err(BoxError::from)
    } else {
        Ok(())
    };
    let (mut samples, wall) = result?;
    destroyed?;

    samples.sort_unstable();
    let n = samples.len();
    let total: Duration = samples.iter().sum();
    let mean = total / u32::try_from(n).unwrap_or(u32::MAX);
    let throughput = n as f64 / wall.as_secs_f64();
    println!(
        "{{\"runs\":{n},\"warmup\":{},\"concurrency\":{},\"runtime\":\"{}\",\"cmd\":{:?},\
         \"median_ms\":{:.4},\"p90_ms\":{:.4},\"p99_ms\":{:.4},\"min_ms\":{:.4},\"max_ms\":{:.4},\
         \"mean_ms\":{:.4},\"wall_s\":{:.4},\"execs_per_s\":{:.1},\"create_ms\":{:.3},\
         \"sandbox_id\":{:?}}}",
        args.warmup,
        args.concurrency,
        if args.current_thread {
            "current"
        } else {
            "multi"
        },
        args.cmd,
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(samples[0]),
        ms(samples[n - 1]),
        ms(mean),
        wall.as_secs_f64(),
        throughput,
        create_ms,
        sandbox.id(),
    );
    Ok(())
}

/// Runs the warmup, then the measured execs; returns every measured round trip and the wall
/// time of the measured part.
async fn measure(sandbox: &Sandbox, args: &Args) -> Result<(Vec<Duration>, Duration), BoxError> {
    for _ in 0..args.warmup {
        one(sandbox, &args.cmd).await?;
    }
    let started = Instant::now();
    if args.concurrency == 1 {
        let mut samples = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            samples.push(one(sandbox, &args.cmd).await?);
        }
        return Ok((samples, started.elapsed()));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let sandbox = sandbox.clone();
        let next = Arc::clone(&next);
        let (runs, cmd) = (args.runs, args.cmd.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < runs {
                samples.push(one(&sandbox, &cmd).await?);
            }
            Ok::<_, BoxError>(samples)
        }));
    }
    let mut samples = Vec::with_capacity(args.runs);
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => samples.extend(s),
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => first_err = first_err.or(Some(e.into())),
        }
    }
    let wall = started.elapsed();
    match first_err {
        Some(e) => Err(e),
        None => Ok((samples, wall)),
    }
}

/// One exec of `cmd`, timed from the request to its exit status.
async fn one(sandbox: &Sandbox, cmd: &str) -> Result<Duration, BoxError> {
    let t = Instant::now();
    let out = sandbox.exec([cmd]).output().await?;
    let took = t.elapsed();
    if out.status.code != Some(0) {
        return Err(format!("{cmd} ended with {:?}", out.status).into());
    }
    Ok(took)
}

/// The `q` quantile of sorted `samples` (linear interpolation between closest ranks).
fn percentile(samples: &[Duration], q: f64) -> Duration {
    let pos = q * (samples.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    samples[lo].mul_f64(1.0 - frac) + samples[hi].mul_f64(frac)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
