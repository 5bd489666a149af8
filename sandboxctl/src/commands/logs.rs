//! `sandboxctl logs`: replays an exec's output from its start; with `-f`, follows it until the
//! exec exits. Without `-f` it stops at the output that existed when it began (or, for an
//! exec that has ended, at its exit).

use std::path::Path;

use agent_sdk::Event;
use anyhow::{bail, Context};
use clap::Args;

use super::connect;
use crate::stream::Sink;

/// Flags of `sandboxctl logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the output until the exec exits
    #[arg(short, long)]
    follow: bool,
    /// The sandbox
    #[arg(value_name = "ID")]
    id: String,
    /// The exec
    #[arg(value_name = "EXEC_ID")]
    exec_id: u64,
}

/// Prints the exec's output, stdout to stdout and stderr to stderr.
pub async fn execute(socket: &Path, args: LogsArgs) -> anyhow::Result<i32> {
    let client = connect(socket).await?;
    let sandbox = client.sandbox(&args.id);
    // Where to stop: `None` follows to the exit.
    let until = if args.follow {
        None
    } else {
        let info = sandbox
            .inspect()
            .await
            .with_context(|| format!("inspecting {}", args.id))?;
        info.execs
            .iter()
            .find(|e| e.exec_id == args.exec_id && e.exit.is_none())
            .map(|e| e.next_seq)
    };
    if until == Some(0) {
        return Ok(0);
    }
    let mut run = sandbox
        .attach(args.exec_id, 0)
        .await
        .with_context(|| format!("attaching to exec {} of {}", args.exec_id, args.id))?;
    let (mut stdout, mut stderr) = (Sink::stdout(), Sink::stderr());
    loop {
        match run.next_event().await {
            Some(Event::Stdout(data)) => {
                if !stdout.write(data).await {
                    // Our reader went away (e.g. `| head`): nothing more to do.
                    return Ok(0);
                }
            }
            Some(Event::Stderr(data)) => {
                stderr.write(data).await;
            }
            Some(Event::Exit(_)) => return Ok(0),
            Some(Event::Error(err)) => return Err(err.into()),
            None => bail!("the exec's stream ended without an exit"),
        }
        if until.is_some_and(|until| run.next_seq() >= until) {
            return Ok(0);
        }
    }
}
