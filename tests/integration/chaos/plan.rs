//! The chaos run's choices, all drawn from one seeded generator so that a failing run replays
//! exactly (same seed, same iteration count: same participants killed at the same delays; the
//! processes' own timing still varies, which is the point of running many seeds).
//!
//! The generator is SplitMix64: tiny, good enough to spread choices, and ours, so no crate's
//! version bump can change what a seed means.

/// The most calls an iteration's traffic makes before the kill (about 800 ms of calls here).
const MAX_CALLS: u64 = 60;

/// The environment variable that sets the seed.
pub const SEED_VAR: &str = "TETHER_CHAOS_SEED";
/// The environment variable that sets the number of iterations.
pub const ITERATIONS_VAR: &str = "TETHER_CHAOS_ITERATIONS";
/// The seed when none is given: CI runs the same chaos every time.
pub const DEFAULT_SEED: u64 = 0x7e7e_c4a0_5eed;
/// The same for the run with cgroups forced off.
pub const DEFAULT_SEED_NO_CGROUP: u64 = 0x7e7e_4ee9_e45d;

/// A seeded SplitMix64 generator.
pub struct Rng(u64);

impl Rng {
    /// A generator that replays `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The participant an iteration SIGKILLs, and so the guarantee it tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `tether serve`: its shims see their lifelines close; the next start sweeps.
    Gateway,
    /// One instance's shim (`tether wrap`): its watchdog ends the tree.
    Shim,
    /// One shim's watchdog: the shim goes on, and must still end its tree at scope end.
    Watchdog,
    /// The client of a standalone `tether wrap` (the shell holding its stdin).
    Client,
    /// The local `ssh` of an SSH instance: the remote wrapper ends the remote tree.
    SshClient,
    /// One instance's server (local or remote): its escapees must not outlive the instance.
    Server,
    /// Power loss (gateway, shims, watchdogs at once), then the next gateway SIGKILLed in the
    /// middle of its start-up sweep: the one after must finish it, and skip a recycled pid.
    Sweep,
    /// The gateway SIGKILLed while a reload ends the instances of a changed server.
    Reload,
    /// One instance's keeper (no cgroup only): its shim must end the tree on its own.
    Keeper,
}

impl Kind {
    /// Every kind, in the report's order.
    pub const ALL: [Kind; 9] = [
        Kind::Gateway,
        Kind::Shim,
        Kind::Watchdog,
        Kind::Client,
        Kind::SshClient,
        Kind::Server,
        Kind::Sweep,
        Kind::Reload,
        Kind::Keeper,
    ];

    /// The kind's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gateway => "gateway",
            Kind::Shim => "shim",
            Kind::Watchdog => "watchdog",
            Kind::Client => "client",
            Kind::SshClient => "ssh client",
            Kind::Server => "server",
            Kind::Sweep => "gateway during a sweep",
            Kind::Reload => "gateway during a reload",
            Kind::Keeper => "keeper",
        }
    }
}

/// What one iteration does, decided before it starts.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Whom it kills.
    pub kind: Kind,
    /// Whether it also runs a standalone `tether wrap` of the zoo.
    pub wrap: bool,
    /// How many clients hold sessions on the per-session server.
    pub sessions: u64,
    /// How many calls the traffic makes before the kill: the moment, counted in the work done
    /// rather than in time, so that it means the same on a fast machine and a loaded one.
    pub calls: u64,
    /// Which candidate of `kind` dies, when there are several (index modulo their number).
    pub victim: u64,
    /// The failpoint a [`Kind::Sweep`] freezes the sweeping gateway at.
    pub sweep_point: &'static str,
    /// Whether a bystander takes a pid of an instance that ended this iteration.
    pub recycle: bool,
}

impl Step {
    /// Draws the rest of an iteration that kills `kind`.
    fn draw(rng: &mut Rng, kind: Kind) -> Step {
        Step {
            kind,
            wrap: kind == Kind::Client || rng.chance(30),
            sessions: 1 + rng.below(2),
            calls: rng.below(MAX_CALLS + 1),
            victim: rng.next(),
            sweep_point: rng.pick(&["sweep-acting", "sweep-closing"]),
            recycle: rng.chance(50),
        }
    }
}

/// The iterations' plan: the kinds come from a shuffled bag of every kind, refilled when empty,
/// so that any run of as many iterations as there are kinds kills each kind once, the short
/// run included; the rest is drawn freely.
pub struct Plan {
    /// Every choice's source.
    pub rng: Rng,
    /// The kinds this run can kill (no ssh client without sshd, no keeper with a cgroup).
    kinds: Vec<Kind>,
    /// What is left of the current round.
    bag: Vec<Kind>,
}

impl Plan {
    /// The plan of `seed`; `ssh` says whether SSH instances run, `keepers` whether instances
    /// run under keepers (cgroups off).
    pub fn new(seed: u64, ssh: bool, keepers: bool) -> Plan {
        Plan {
            rng: Rng::new(seed),
            kinds: Kind::ALL
                .into_iter()
                .filter(|k| (ssh || *k != Kind::SshClient) && (keepers || *k != Kind::Keeper))
                .collect(),
            bag: Vec::new(),
        }
    }

    /// How many kinds one round kills: the short run's length.
    pub fn round(&self) -> u32 {
        self.kinds.len() as u32
    }

    /// The next iteration.
    pub fn next_step(&mut self) -> Step {
        if self.bag.is_empty() {
            self.bag = self.kinds.clone();
            for i in (1..self.bag.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                self.bag.swap(i, j);
            }
        }
        let kind = self.bag.pop().unwrap_or(Kind::Gateway);
        Step::draw(&mut self.rng, kind)
    }
}

/// The seed and iteration count from the environment; the seed's default is `default_seed`,
/// the count's (`None`) one round of the plan's kinds.
pub fn from_env(default_seed: u64) -> (u64, Option<u32>) {
    let seed = std::env::var(SEED_VAR).ok().map(|s| {
        let s = s.trim();
        s.strip_prefix("0x")
            .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
            .unwrap_or_else(|e| panic!("{SEED_VAR}={s}: {e}"))
    });
    let iterations = std::env::var(ITERATIONS_VAR)
        .ok()
        .map(|s| s.trim().parse().unwrap_or_else(|e| panic!("{ITERATIONS_VAR}={s}: {e}")));
    (seed.unwrap_or(default_seed), iterations)
}

#[test]
fn a_seed_replays_the_same_plan_and_each_round_kills_every_kind() {
    let draw = |seed| {
        let mut plan = Plan::new(seed, true, true);
        (0..2 * Kind::ALL.len()).map(|_| plan.next_step()).collect::<Vec<_>>()
    };
    let text = |steps: &[Step]| steps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>();
    assert_eq!(text(&draw(7)), text(&draw(7)));
    assert_ne!(text(&draw(7)), text(&draw(8)));
    for round in draw(7).chunks(Kind::ALL.len()) {
        let mut kinds: Vec<Kind> = round.iter().map(|s| s.kind).collect();
        kinds.sort();
        assert_eq!(kinds, Kind::ALL.to_vec());
    }
}
