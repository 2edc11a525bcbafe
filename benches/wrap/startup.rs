//! Phase 2: start-up (spawn → `initialize` reply) and teardown (stdin closed → exit), direct
//! against wrapped.
//!
//! This is where `tether wrap` does its work (setting up containment, then ending the whole
//! tree), so it is where its cost shows.

use std::time::Instant;

use anyhow::Result;

use crate::client::Server;
use crate::context::{Ctx, Mode};
use crate::messages::{check_initialize, initialize_request};
use crate::progress;
use crate::stats::millis;

/// Spawns per mode.
pub const START_ITERS: usize = 200;

pub struct Startups {
    /// Per mode: spawn → initialize reply, in ms.
    pub startup: [Vec<f64>; 2],
    /// Per mode: stdin closed → process exit, in ms.
    pub teardown: [Vec<f64>; 2],
}

pub fn measure(ctx: &Ctx) -> Result<Startups> {
    progress(format_args!("start-up/teardown: {START_ITERS} spawns per mode"));
    let mut st = Startups {
        startup: Default::default(),
        teardown: Default::default(),
    };
    let init = initialize_request();
    for i in 0..START_ITERS {
        for mode in Mode::pair(i) {
            let t0 = Instant::now();
            let mut server = Server::start(ctx, mode, false, false)?;
            let reply = server.call(&init)?;
            let up = t0.elapsed();
            check_initialize(reply)?;
            let down = server.finish_ok(mode)?;
            st.startup[mode.index()].push(millis(up));
            st.teardown[mode.index()].push(millis(down));
        }
        if (i + 1) % 50 == 0 {
            progress(format_args!("  {}/{START_ITERS}", i + 1));
        }
    }
    Ok(st)
}
