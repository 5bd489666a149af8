//! `sandboxctl stats`: a sandbox's resource usage, one line per sample; with `--watch`, a
//! sample every second until interrupted (or the sandbox is gone).

use std::path::Path;
use std::time::Duration;

use agent_sdk::SandboxStats;
use anyhow::Context;
use clap::Args;
use tokio::time::{Instant, MissedTickBehavior};

use super::connect;
use crate::units::format_size;

/// Time between samples with `--watch`.
const INTERVAL: Duration = Duration::from_secs(1);

/// Flags of `sandboxctl stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print a sample every second until interrupted
    #[arg(short, long)]
    watch: bool,
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
}

/// Prints one sample, or one per second.
pub async fn execute(socket: &Path, args: StatsArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let sandbox = client.sandbox(&args.id);
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last: Option<(Instant, Option<u64>)> = None;
    loop {
        ticks.tick().await;
        let stats = sandbox
            .stats()
            .await
            .with_context(|| format!("reading the usage of {}", args.id))?;
        let now = Instant::now();
        let cpu_percent = last.and_then(|(at, cpu)| {
            let used = stats.cpu_usage_us?.checked_sub(cpu?)?;
            let wall = now.duration_since(at).as_micros();
            (wall > 0).then(|| used as f64 * 100.0 / wall as f64)
        });
        println!("{}", render(&stats, cpu_percent));
        if !args.watch {
            return Ok(0);
        }
        last = Some((now, stats.cpu_usage_us));
    }
}

/// One sample as `key=value` fields; `-` where the host's cgroups do not tell.
fn render(s: &SandboxStats, cpu_percent: Option<f64>) -> String {
    let size = |v: Option<u64>| {
        v.map_or_else(
            || "-".into(),
            |b| format_size(b).replace(" bytes", "B").replace(' ', ""),
        )
    };
    let num = |v: Option<u64>| v.map_or_else(|| "-".into(), |n| n.to_string());
    let cpu = cpu_percent.map_or_else(|| "-".into(), |p| format!("{p:.1}%"));
    let cpu_time = s
        .cpu_usage_us
        .map_or_else(|| "-".into(), |us| format!("{:.2}s", us as f64 / 1e6));
    format!(
        "state={} cpu={cpu} cpu_time={cpu_time} mem={} mem_limit={} mem_peak={} pids={} \
         pids_limit={} io_read={} io_write={} oom_kills={}",
        if s.frozen { "paused" } else { "running" },
        size(s.memory_current),
        size(s.memory_limit),
        size(s.memory_peak),
        num(s.pids_current),
        num(s.pids_limit),
        size(s.io_read_bytes),
        size(s.io_write_bytes),
        s.oom_kills,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line() {
        let stats = SandboxStats {
            cpu_usage_us: Some(1_234_567),
            memory_current: Some(12 << 20),
            memory_limit: Some(256 << 20),
            pids_current: Some(3),
            pids_limit: Some(64),
            io_read_bytes: Some(1536),
            oom_kills: 1,
            frozen: true,
            ..SandboxStats::default()
        };
        assert_eq!(
            render(&stats, Some(12.345)),
            "state=paused cpu=12.3% cpu_time=1.23s mem=12MiB mem_limit=256MiB mem_peak=- \
             pids=3 pids_limit=64 io_read=1.5KiB io_write=- oom_kills=1"
        );
        let line = render(
            &SandboxStats {
                io_write_bytes: Some(0),
                ..SandboxStats::default()
            },
            None,
        );
        assert!(line.contains(" io_write=0B "), "{line}");
        assert!(
            line.starts_with("state=running cpu=- cpu_time=- mem=-"),
            "{line}"
        );
    }
}
