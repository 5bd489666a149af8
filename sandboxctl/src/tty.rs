//! The local terminal for `exec -t`: raw mode, restored when the guard drops, and the window
//! size. Through rustix, whose `tcgetwinsize` is a safe call (nix offers only an `ioctl!` macro,
//! which needs `unsafe`, forbidden in this crate).

use rustix::termios::{self, OptionalActions, Termios};

/// Raw mode on our stdin while this lives: no echo, no line editing, and no signals from keys,
/// so Ctrl-C and Ctrl-Z reach the sandbox as bytes. Dropping it restores the saved settings;
/// it drops on every way out of `exec` (an error, a forwarded signal's exit, a panic), since
/// sandboxctl only exits after the verb returns.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> anyhow::Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        if !termios::isatty(&stdin) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// The terminal's size as (rows, columns), from the first of stdin, stdout and stderr that is
/// a terminal reporting one.
pub fn size() -> Option<(u16, u16)> {
    let from = |ws: rustix::io::Result<termios::Winsize>| match ws {
        Ok(ws) if ws.ws_row > 0 && ws.ws_col > 0 => Some((ws.ws_row, ws.ws_col)),
        _ => None,
    };
    from(termios::tcgetwinsize(std::io::stdin()))
        .or_else(|| from(termios::tcgetwinsize(std::io::stdout())))
        .or_else(|| from(termios::tcgetwinsize(std::io::stderr())))
}
