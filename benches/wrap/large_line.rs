//! Phase 4: a large line, 1 MiB of echo text each way per call, direct against wrapped.
//!
//! The shim hands the client's pipes to the server, so even a line far larger than any pipe
//! buffer must move as fast wrapped as direct.

use anyhow::Result;

use crate::client::Server;
use crate::context::{Ctx, Mode};
use crate::messages::Echoes;
use crate::progress;
use crate::stats::millis;

/// Rounds per mode and timed calls per round (50 in all), and the text length.
pub const BIG_ROUNDS: usize = 5;
pub const BIG_CALLS: usize = 10;
pub const BIG_LEN: usize = 1 << 20;

/// Per mode, the time of each timed call in ms.
pub fn measure(ctx: &Ctx) -> Result<[Vec<f64>; 2]> {
    progress(format_args!(
        "large line: {BIG_ROUNDS} rounds x {BIG_CALLS} calls of {BIG_LEN} bytes per mode"
    ));
    let echoes = Echoes::new(BIG_CALLS + 1, &"x".repeat(BIG_LEN));
    let mut ms: [Vec<f64>; 2] = Default::default();
    for round in 0..BIG_ROUNDS {
        for mode in Mode::pair(round) {
            let mut server = Server::initialized(ctx, mode)?;
            // The first call (id 1) warms up both sides' buffers and is not timed.
            ms[mode.index()].extend(server.time_echoes(&echoes, 1)?.into_iter().map(millis));
            server.finish_ok(mode)?;
        }
    }
    Ok(ms)
}
