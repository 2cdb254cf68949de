//! PRADA model-extraction detection, per client identity, and a bounded tracker over many identities.
//!
//! Algorithm: M. Juuti, S. Szyller, S. Marchal, N. Asokan, "PRADA: Protecting against DNN model stealing
//! attacks", IEEE EuroS&P 2019, Algorithm 1, with the rules of the authors' reference code (SSG Aalto
//! `GrowingDistanceAgent`), as `prada.json` defines:
//! - Per predicted class `c` a *growing set* `G_c` of the client's queries and a threshold `T_c`. A query `x`
//!   of class `c` gets `dmin = min_{y in G_c} ‖x - y‖₂`, recorded in the client's distance list `D`. If
//!   `dmin > T_c` (strict) `x` joins `G_c`, its `dmin` joins `D_Gc` (which starts as `[0]`), and
//!   `T_c = max(T_c, mean(D_Gc) - std(D_Gc))` (population std). A class's first query only starts `G_c`.
//! - Once `|D| > 100`, the distances within 3 standard deviations of their mean are tested for normality with
//!   Shapiro–Wilk ([`crate::shapiro`]); an alarm when `W < delta`. Benign clients' queries are spread
//!   naturally and their distances look normal; synthetic queries crafted around a few seeds do not.
//!
//! Why per identity: the attack is a sequence from one client; mixing clients hides it. The tracker keeps one
//! detector per identity and bounds memory (see [`TrackerConfig`]): a gateway must not let a flood of new
//! identities or of queries grow its state without limit.
//!
//! Deviations from the paper, all for bounded memory and all off the reference vectors' path: the growing sets
//! of one identity hold at most [`Config::max_stored_queries`] queries in total (past that, new queries are
//! still measured against the stored ones but no longer join a set, and a class first seen then is not
//! tracked), and `D` keeps the most recent [`Config::max_distances`] distances.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

use crate::error::StatError;
use crate::shapiro::{shapiro_wilk_sorted, ShapiroWilk};
use crate::welford::Welford;
use crate::Baseline;

/// Per-identity parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Alarm when W falls below this (paper: 0.9–0.96; default 0.95).
    pub delta: f64,
    /// No test until `|D|` exceeds this (paper: 100).
    pub min_distances: usize,
    /// Test every this many queries once testing starts (default 1 = after every query, as Algorithm 1). The
    /// test sorts `D`, so a larger value trades detection delay for CPU.
    pub test_every: u64,
    /// Bound on the queries kept in all of one identity's growing sets together (default 500).
    pub max_stored_queries: usize,
    /// Bound on the distances kept (default 2000; the oldest are dropped first).
    pub max_distances: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            delta: 0.95,
            min_distances: 100,
            test_every: 1,
            max_stored_queries: 500,
            max_distances: 2000,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), StatError> {
        if !(self.delta > 0.0 && self.delta <= 1.0) {
            return Err(StatError::InvalidParameter {
                name: "delta",
                problem: "must be in (0, 1]",
            });
        }
        if self.test_every == 0 || self.max_distances < 3 {
            return Err(StatError::InvalidParameter {
                name: "test_every/max_distances",
                problem: "test_every must be >= 1 and max_distances >= 3",
            });
        }
        Ok(())
    }
}

/// What one query did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Distance to the nearest earlier query of the same class in its growing set (`None` for a class's first
    /// query).
    pub dmin: Option<f64>,
    /// Whether the query joined its class's growing set.
    pub added: bool,
    /// `T_c` after the query.
    pub threshold: f64,
    /// W of the filtered distances, when a test ran on this query.
    pub w: Option<f64>,
    /// `w < delta`.
    pub alarm: bool,
}

#[derive(Debug, Clone)]
struct ClassState {
    /// Row-major growing set.
    set: Vec<f64>,
    dists: Welford,
    threshold: f64,
}

/// The distance list `D`, in arrival order and, alongside, in ascending order: a test then neither copies
/// nor sorts, because the kept distances are one run of the sorted list (sorting 2,000 distances was most
/// of the monitor thread's time under load).
#[derive(Debug, Clone, Default)]
struct Distances {
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Distances {
    /// Appends `dmin`, first dropping the oldest distance when `cap` are held.
    fn push(&mut self, dmin: f64, cap: usize) {
        if self.arrival.len() >= cap {
            if let Some(old) = self.arrival.pop_front() {
                // `old` is in `sorted`: the first value not below it equals it.
                let at = self.sorted.partition_point(|v| *v < old);
                if at < self.sorted.len() {
                    self.sorted.remove(at);
                }
            }
        }
        self.arrival.push_back(dmin);
        let at = self.sorted.partition_point(|v| *v < dmin);
        self.sorted.insert(at, dmin);
    }

    fn len(&self) -> usize {
        self.arrival.len()
    }
}

/// PRADA for one identity.
#[derive(Debug, Clone)]
pub struct Prada {
    config: Config,
    width: Option<usize>,
    classes: BTreeMap<u32, ClassState>,
    stored: usize,
    distances: Distances,
    queries: u64,
    tests: u64,
}

impl Prada {
    /// A detector that has seen nothing.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] for a `delta` outside `(0, 1]`, `test_every == 0` or
    /// `max_distances < 3`.
    pub fn new(config: Config) -> Result<Self, StatError> {
        config.check()?;
        Ok(Self {
            config,
            width: None,
            classes: BTreeMap::new(),
            stored: 0,
            distances: Distances::default(),
            queries: 0,
            tests: 0,
        })
    }

    /// Queries observed.
    #[must_use]
    pub const fn queries(&self) -> u64 {
        self.queries
    }

    /// The distance list `D` (most recent last).
    #[must_use]
    pub const fn distances(&self) -> &VecDeque<f64> {
        &self.distances.arrival
    }

    /// Size of each class's growing set.
    pub fn growing_set_sizes(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        let d = self.width.unwrap_or(1).max(1);
        self.classes.iter().map(move |(c, s)| (*c, s.set.len() / d))
    }

    /// Observes query `x` that the model assigned to `class`.
    ///
    /// # Errors
    ///
    /// [`StatError::NonFinite`], [`StatError::WidthMismatch`] against the first query's width,
    /// [`StatError::TooFew`] for an empty query. A refused query leaves the state unchanged.
    pub fn observe(&mut self, x: &[f64], class: u32) -> Result<Observation, StatError> {
        if x.is_empty() {
            return Err(StatError::TooFew {
                what: "query",
                needed: 1,
                got: 0,
            });
        }
        crate::error::check_finite("query", x)?;
        let d = *self.width.get_or_insert(x.len());
        if x.len() != d {
            return Err(StatError::WidthMismatch {
                what: "query",
                expected: d,
                got: x.len(),
            });
        }
        self.queries += 1;
        let room = self.stored < self.config.max_stored_queries;
        let mut obs = Observation {
            dmin: None,
            added: false,
            threshold: 0.0,
            w: None,
            alarm: false,
        };
        match self.classes.get_mut(&class) {
            // Without room a new class is not even recorded, so the number of classes held is bounded by
            // `max_stored_queries` too; its queries stay "first queries" (nothing to measure against).
            None if !room => {}
            None => {
                let mut dists = Welford::new();
                dists.push(0.0);
                self.stored += 1;
                obs.added = true;
                self.classes.insert(
                    class,
                    ClassState {
                        set: x.to_vec(),
                        dists,
                        threshold: 0.0,
                    },
                );
            }
            Some(state) => {
                let dmin = state
                    .set
                    .chunks_exact(d)
                    .map(|y| {
                        x.iter()
                            .zip(y)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .fold(f64::INFINITY, f64::min);
                if dmin.is_finite() {
                    obs.dmin = Some(dmin);
                    self.distances.push(dmin, self.config.max_distances);
                    if dmin > state.threshold && room {
                        state.set.extend_from_slice(x);
                        self.stored += 1;
                        obs.added = true;
                        state.dists.push(dmin);
                        if let (Some(mean), Some(var)) =
                            (state.dists.mean(), state.dists.variance_population())
                        {
                            state.threshold = state.threshold.max(mean - var.sqrt());
                        }
                    }
                }
                obs.threshold = state.threshold;
            }
        }
        self.maybe_test(&mut obs);
        Ok(obs)
    }

    /// Records a distance another replica measured for the same client (see `rampart-server`'s shared state):
    /// it joins `D` and counts as a query, and the test runs on the usual cadence. The growing sets stay this
    /// detector's own, so `D` becomes the merged stream of every replica's distances.
    ///
    /// # Errors
    ///
    /// [`StatError::NonFinite`] for a distance that is not finite, [`StatError::InvalidParameter`] for a negative
    /// one; the state is unchanged.
    pub fn push_distance(&mut self, dmin: f64) -> Result<Observation, StatError> {
        if !dmin.is_finite() {
            return Err(StatError::NonFinite {
                what: "distance",
                index: 0,
            });
        }
        if dmin < 0.0 {
            return Err(StatError::InvalidParameter {
                name: "distance",
                problem: "must be >= 0",
            });
        }
        self.queries += 1;
        self.distances.push(dmin, self.config.max_distances);
        let mut obs = Observation {
            dmin: Some(dmin),
            added: false,
            threshold: 0.0,
            w: None,
            alarm: false,
        };
        self.maybe_test(&mut obs);
        Ok(obs)
    }

    fn maybe_test(&mut self, obs: &mut Observation) {
        if self.distances.len() > self.config.min_distances {
            self.tests += 1;
            if (self.tests - 1) % self.config.test_every == 0 {
                if let Some(sw) = self.test() {
                    obs.w = Some(sw.w);
                    obs.alarm = sw.w < self.config.delta;
                }
            }
        }
    }

    /// The distances PRADA tests, in ascending order: those within 3 population standard deviations of the
    /// mean of `D`.
    #[must_use]
    pub fn kept_distances(&self) -> &[f64] {
        let d = &self.distances.arrival;
        let n = d.len();
        if n == 0 {
            return &[];
        }
        let nf = n as f64;
        let mean = d.iter().sum::<f64>() / nf;
        let var = d.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / nf;
        let bound = 3.0 * var.sqrt();
        // `z - mean` never decreases as `z` grows, so `|z - mean| <= bound` holds on one run of `sorted`.
        let sorted = &self.distances.sorted;
        let lo = sorted.partition_point(|z| z - mean < -bound);
        let hi = sorted.partition_point(|z| z - mean <= bound);
        &sorted[lo..hi.max(lo)]
    }

    /// Shapiro–Wilk on [`Self::kept_distances`] now, whether or not `|D|` has passed the minimum; `None` below
    /// 3 kept distances or when they are all equal (no evidence either way).
    #[must_use]
    pub fn test(&self) -> Option<ShapiroWilk> {
        shapiro_wilk_sorted(self.kept_distances()).ok()
    }

    /// Whether the detector currently alarms: `|D|` past the minimum and W below `delta`.
    #[must_use]
    pub fn alarm(&self) -> bool {
        self.distances.len() > self.config.min_distances
            && self.test().is_some_and(|t| t.w < self.config.delta)
    }
}

/// Bins per feature for [`Coverage`]: the 8 intervals between the baseline's 7 quantiles.
pub const COVERAGE_BINS: usize = 8;

/// Feature-space coverage of one identity's queries: for each feature, which of the 8 baseline-quantile bins
/// (`< p01`, `[p01, p05)`, …, `>= p99`) its queries have touched. An extraction attack sweeps the input space,
/// so its coverage climbs towards 1 much faster than a client with a real, narrow use case. O(d) bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    edges: Vec<[f64; 7]>,
}

impl Coverage {
    /// Bins from the baseline's per-feature quantiles.
    #[must_use]
    pub fn from_baseline(baseline: &Baseline) -> Self {
        Self {
            edges: baseline
                .features
                .iter()
                .map(|f| f.quantiles.to_array())
                .collect(),
        }
    }

    /// Bins from explicit ascending edges, 7 per feature.
    #[must_use]
    pub const fn from_edges(edges: Vec<[f64; 7]>) -> Self {
        Self { edges }
    }

    fn mark(&self, occupied: &mut [u8], x: &[f64]) {
        for ((bits, e), v) in occupied.iter_mut().zip(&self.edges).zip(x) {
            let b = e.partition_point(|edge| edge <= v);
            *bits |= 1 << b;
        }
    }

    fn fraction(&self, occupied: &[u8]) -> f64 {
        if occupied.is_empty() {
            return 0.0;
        }
        let hit: u32 = occupied.iter().map(|b| b.count_ones()).sum();
        f64::from(hit) / (occupied.len() * COVERAGE_BINS) as f64
    }
}

/// Bounds of a [`PradaTracker`].
///
/// Memory is at most about `max_identities × (max_stored_queries × d + 2 × max_distances) × 8` bytes (`D` is
/// kept in arrival order and sorted), plus `d` bytes of coverage per identity: with the defaults and 30
/// features, 1024 × (500 × 30 + 2 × 2000) × 8 ≈ 156 MB in the worst case (every identity at its cap), far less
/// in practice.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Per-identity detector parameters and bounds.
    pub prada: Config,
    /// Identities tracked at once (default 1024); the least recently seen is evicted to admit a new one.
    pub max_identities: usize,
    /// Coverage bins; `None` turns coverage off.
    pub coverage: Option<Coverage>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            prada: Config::default(),
            max_identities: 1024,
            coverage: None,
        }
    }
}

/// Per-identity state reported after each query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentityReport {
    /// This query's PRADA observation.
    pub observation: Observation,
    /// Queries seen from the identity since it was (re)admitted.
    pub queries: u64,
    /// Fraction of occupied coverage bins, when coverage is configured.
    pub coverage: Option<f64>,
}

#[derive(Debug, Clone)]
struct Entry {
    prada: Prada,
    occupied: Vec<u8>,
    last_seen: u64,
}

/// One [`Prada`] per identity, at most [`TrackerConfig::max_identities`] of them, least recently seen evicted
/// first. An evicted identity starts over if it returns, which an attacker could use to reset its own
/// detector only by being idle while `max_identities` other identities are active: size the cap above the
/// number of concurrently active clients.
#[derive(Debug)]
pub struct PradaTracker<K> {
    config: TrackerConfig,
    entries: HashMap<K, Entry>,
    by_age: BTreeMap<u64, K>,
    clock: u64,
    evicted: u64,
}

impl<K: Hash + Eq + Clone> PradaTracker<K> {
    /// An empty tracker.
    ///
    /// # Errors
    ///
    /// [`StatError::InvalidParameter`] for `max_identities == 0` or invalid per-identity parameters.
    pub fn new(config: TrackerConfig) -> Result<Self, StatError> {
        config.prada.check()?;
        if config.max_identities == 0 {
            return Err(StatError::InvalidParameter {
                name: "max_identities",
                problem: "must be >= 1",
            });
        }
        Ok(Self {
            config,
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            clock: 0,
            evicted: 0,
        })
    }

    /// Identities tracked now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no identity is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Identities evicted so far (a monitor exports this: steady eviction means the cap is too low).
    #[must_use]
    pub const fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The detector of `id`, if tracked.
    #[must_use]
    pub fn get(&self, id: &K) -> Option<&Prada> {
        self.entries.get(id).map(|e| &e.prada)
    }

    /// Coverage of `id` so far, if tracked and coverage is configured.
    #[must_use]
    pub fn coverage(&self, id: &K) -> Option<f64> {
        let cov = self.config.coverage.as_ref()?;
        self.entries.get(id).map(|e| cov.fraction(&e.occupied))
    }

    /// Forgets `id` (after a block, for instance).
    pub fn remove(&mut self, id: &K) {
        if let Some(e) = self.entries.remove(id) {
            self.by_age.remove(&e.last_seen);
        }
    }

    /// Records a distance another replica measured for `id` ([`Prada::push_distance`]). Only an identity this
    /// tracker already follows takes it (`Ok(None)` otherwise): a remote stream must not admit identities or
    /// evict local ones.
    ///
    /// # Errors
    ///
    /// As [`Prada::push_distance`].
    pub fn push_distance(
        &mut self,
        id: &K,
        dmin: f64,
    ) -> Result<Option<IdentityReport>, StatError> {
        let Some(entry) = self.entries.get_mut(id) else {
            return Ok(None);
        };
        let observation = entry.prada.push_distance(dmin)?;
        let coverage = self
            .config
            .coverage
            .as_ref()
            .map(|c| c.fraction(&entry.occupied));
        Ok(Some(IdentityReport {
            observation,
            queries: entry.prada.queries(),
            coverage,
        }))
    }

    /// Observes a query of `id` that the model assigned to `class`.
    ///
    /// # Errors
    ///
    /// As [`Prada::observe`]. A refused query neither admits a new identity nor evicts one; a known identity's
    /// query of the wrong width is refused by its detector.
    pub fn observe(&mut self, id: &K, x: &[f64], class: u32) -> Result<IdentityReport, StatError> {
        // Everything that can refuse a query for a fresh identity is checked before it is admitted.
        crate::error::check_len("query", x, 1)?;
        crate::error::check_finite("query", x)?;
        self.clock += 1;
        let now = self.clock;
        if !self.entries.contains_key(id) {
            while self.entries.len() >= self.config.max_identities {
                let Some((_, oldest)) = self.by_age.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
                self.evicted += 1;
            }
            let width = self
                .config
                .coverage
                .as_ref()
                .map_or(0, |c| c.edges.len().min(x.len()));
            self.entries.insert(
                id.clone(),
                Entry {
                    prada: Prada::new(self.config.prada)?,
                    occupied: vec![0; width],
                    last_seen: now,
                },
            );
            self.by_age.insert(now, id.clone());
        }
        let Some(entry) = self.entries.get_mut(id) else {
            return Err(StatError::InvalidParameter {
                name: "max_identities",
                problem: "no room for the identity",
            });
        };
        let observation = entry.prada.observe(x, class)?;
        self.by_age.remove(&entry.last_seen);
        entry.last_seen = now;
        self.by_age.insert(now, id.clone());
        let coverage = self.config.coverage.as_ref().map(|c| {
            c.mark(&mut entry.occupied, x);
            c.fraction(&entry.occupied)
        });
        Ok(IdentityReport {
            observation,
            queries: entry.prada.queries(),
            coverage,
        })
    }
}
