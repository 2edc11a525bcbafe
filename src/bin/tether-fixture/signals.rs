//! Signal dispositions and blocking forever.
//!
//! The fixture (with `--ignore-sigterm`) and tough sleepers ignore termination
//! signals so tests can prove that only SIGKILL of the whole tree works; plain
//! sleepers restore the defaults so an inherited SIG_IGN does not make them tough.

use anyhow::{Context, Result};
use nix::sys::signal::{signal, SigHandler, Signal};

/// Signals a tough sleeper ignores.
pub const TOUGH: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];
/// Signals the server ignores with `--ignore-sigterm`.
pub const SERVER: [Signal; 2] = [Signal::SIGTERM, Signal::SIGHUP];

/// Sets each signal to SIG_IGN (`ignore`) or SIG_DFL.
#[allow(unsafe_code)]
pub fn set_ignored(signals: &[Signal], ignore: bool) -> Result<()> {
    let handler = if ignore { SigHandler::SigIgn } else { SigHandler::SigDfl };
    for &sig in signals {
        // SAFETY: only SIG_IGN or SIG_DFL is installed, never a Rust handler, so
        // no code runs in signal context and nothing can violate async-signal-safety.
        unsafe { signal(sig, handler) }.with_context(|| format!("setting {sig} disposition"))?;
    }
    Ok(())
}

/// Blocks forever without spinning, still receiving (and dying of) signals.
pub fn block_forever() -> ! {
    loop {
        nix::unistd::pause();
    }
}
