//! The containment layers, and which of them an operator or a test has switched off.
//!
//! Each layer covers a gap the others leave (see `docs/architecture.md` §3). All are on by default and each
//! degrades on its own when the host lacks it; `--disable LAYER` or `TETHER_DISABLE=a,b` turns
//! one off on purpose, for hosts where it misbehaves and for tests that prove the fallbacks.

use std::fmt;
use std::str::FromStr;

/// One containment mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The server leads its own process group; signals go to the whole group.
    Group,
    /// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are re-parented to the shim.
    Subreaper,
    /// One cgroup v2 per instance: `cgroup.kill` ends every member at once.
    Cgroup,
    /// Signals go through pidfds, so a recycled pid is never hit.
    Pidfd,
    /// `PR_SET_PDEATHSIG(SIGKILL)` on the server: it dies with the shim.
    Pdeathsig,
    /// `TETHER_INSTANCE`/`TETHER_OWNER` in every process's environment, for /proc sweeps.
    Cookie,
    /// Without a cgroup: a living subreaper above the shim that ends what a SIGKILLed shim
    /// leaves (see `shim::keeper`).
    Keeper,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 7] = [
        Layer::Group,
        Layer::Subreaper,
        Layer::Cgroup,
        Layer::Keeper,
        Layer::Pidfd,
        Layer::Pdeathsig,
        Layer::Cookie,
    ];

    /// The name used on the command line, in `TETHER_DISABLE` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Group => "group",
            Layer::Subreaper => "subreaper",
            Layer::Cgroup => "cgroup",
            Layer::Pidfd => "pidfd",
            Layer::Pdeathsig => "pdeathsig",
            Layer::Cookie => "cookie",
            Layer::Keeper => "keeper",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A layer name that is not one of [`Layer::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown containment layer {0:?} (known: group, subreaper, cgroup, keeper, pidfd, pdeathsig, cookie)")]
pub struct UnknownLayer(String);

impl FromStr for Layer {
    type Err = UnknownLayer;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.name() == s.trim())
            .ok_or_else(|| UnknownLayer(s.to_string()))
    }
}

/// The set of layers switched off on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disabled(u8);

impl Disabled {
    /// Nothing disabled.
    pub const NONE: Disabled = Disabled(0);

    /// True when `layer` was switched off.
    pub fn contains(self, layer: Layer) -> bool {
        self.0 & (1 << layer as u8) != 0
    }

    /// Adds `layer` to the set.
    pub fn insert(&mut self, layer: Layer) {
        self.0 |= 1 << layer as u8;
    }

    /// True when `layer` may be used.
    pub fn allows(self, layer: Layer) -> bool {
        !self.contains(layer)
    }

    /// Parses a comma-separated list such as `cgroup,subreaper`; empty items are ignored.
    pub fn parse_list(list: &str) -> Result<Disabled, UnknownLayer> {
        let mut set = Disabled::NONE;
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            set.insert(item.parse()?);
        }
        Ok(set)
    }

    /// Joins both sets.
    pub fn union(self, other: Disabled) -> Disabled {
        Disabled(self.0 | other.0)
    }

    /// The disabled layers, for reports.
    pub fn layers(self) -> impl Iterator<Item = Layer> {
        Layer::ALL.into_iter().filter(move |l| self.contains(*l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let d = Disabled::parse_list("cgroup, subreaper,").unwrap();
        assert!(d.contains(Layer::Cgroup) && d.contains(Layer::Subreaper));
        assert!(d.allows(Layer::Group));
        assert_eq!(d.layers().count(), 2);
        assert!(Disabled::parse_list("cgroups").is_err());
    }
}
