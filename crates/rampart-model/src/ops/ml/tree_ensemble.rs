//! The tree walk shared by `TreeEnsembleClassifier` and `TreeEnsembleRegressor`.
//!
//! Parsed once at load into flat arrays: nodes with their children resolved to indices, and each
//! leaf's `(target, weight)` contributions stored contiguously, so a walk is branch compares and a
//! slice read with no lookups, allocation or error values on the hot path. Semantics follow the
//! ONNX-ML operator spec (<https://onnx.ai/onnx/operators/onnx_aionnxml_TreeEnsembleRegressor.html>)
//! and onnxruntime's `tree_ensemble_aggregator.h` where the spec is silent (aggregation of `MIN`/`MAX`
//! over trees that never touch a target, `NaN` handling).

use crate::ops::attrs;
use std::collections::HashMap;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

fn parse_mode(s: &str) -> TractResult<Mode> {
    Ok(match s {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => Mode::Leaf,
        other => bail!("attribute 'nodes_modes': unknown mode '{other}'"),
    })
}

/// One node. For a branch, `a`/`b` are the true/false child indices; for a leaf, the half-open
/// range of its contributions in [`Ensemble::leaves`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    mode: Mode,
    feature: u32,
    threshold: f32,
    nan_true: bool,
    a: u32,
    b: u32,
}

/// How per-tree contributions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    pub(crate) fn parse(s: &str) -> TractResult<Aggregate> {
        Ok(match s {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => bail!("attribute 'aggregate_function': unknown value '{other}'"),
        })
    }
}

/// A parsed, validated forest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ensemble {
    roots: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<(u32, f32)>,
    /// Columns of the score vector (classes or regression targets).
    pub(crate) n_targets: usize,
    /// One more than the highest feature index any branch reads.
    pub(crate) min_width: usize,
}

impl Ensemble {
    /// Parses the `nodes_*` attributes and the leaf attributes named `{prefix}_treeids`,
    /// `{prefix}_nodeids`, `{prefix}_ids`, `{prefix}_weights` (`class` or `target`).
    pub(crate) fn from_node(node: &NodeProto, prefix: &str, n_targets: usize) -> TractResult<Self> {
        let req_ints = |name: &str| -> TractResult<&[i64]> {
            attrs::ints(node, name)?.ok_or_else(|| attrs::missing(name))
        };
        let tree_ids = req_ints("nodes_treeids")?;
        let n = tree_ids.len();
        if n == 0 {
            bail!("attribute 'nodes_treeids' is empty");
        }
        let node_ids = req_ints("nodes_nodeids")?;
        attrs::check_len("nodes_nodeids", node_ids.len(), n, "nodes_treeids")?;
        let features = req_ints("nodes_featureids")?;
        attrs::check_len("nodes_featureids", features.len(), n, "nodes_treeids")?;
        let true_ids = req_ints("nodes_truenodeids")?;
        attrs::check_len("nodes_truenodeids", true_ids.len(), n, "nodes_treeids")?;
        let false_ids = req_ints("nodes_falsenodeids")?;
        attrs::check_len("nodes_falsenodeids", false_ids.len(), n, "nodes_treeids")?;
        let values = match attrs::floats(node, "nodes_values")? {
            Some(v) => v,
            None if node
                .attribute
                .iter()
                .any(|a| a.name == "nodes_values_as_tensor") =>
            {
                bail!("attribute 'nodes_values_as_tensor' is not supported (double thresholds)")
            }
            None => return Err(attrs::missing("nodes_values")),
        };
        attrs::check_len("nodes_values", values.len(), n, "nodes_treeids")?;
        let modes =
            attrs::strings(node, "nodes_modes")?.ok_or_else(|| attrs::missing("nodes_modes"))?;
        attrs::check_len("nodes_modes", modes.len(), n, "nodes_treeids")?;
        let nan_true = attrs::ints(node, "nodes_missing_value_tracks_true")?;
        if let Some(t) = nan_true {
            attrs::check_len(
                "nodes_missing_value_tracks_true",
                t.len(),
                n,
                "nodes_treeids",
            )?;
        }

        let mut index = HashMap::with_capacity(n);
        for (i, (&t, &id)) in tree_ids.iter().zip(node_ids).enumerate() {
            if index.insert((t, id), i).is_some() {
                bail!("attribute 'nodes_nodeids': node {id} of tree {t} appears twice");
            }
        }
        let child = |attr: &str, t: i64, id: i64| -> TractResult<u32> {
            let i = index
                .get(&(t, id))
                .ok_or_else(|| format_err!("attribute '{attr}': tree {t} has no node {id}"))?;
            Ok(*i as u32)
        };

        let mut nodes = Vec::with_capacity(n);
        let mut min_width = 0usize;
        for i in 0..n {
            let mode = parse_mode(&modes[i])?;
            let feature = u32::try_from(features[i]).map_err(|_| {
                format_err!(
                    "attribute 'nodes_featureids': invalid feature {}",
                    features[i]
                )
            })?;
            let (a, b) = if mode == Mode::Leaf {
                (0, 0)
            } else {
                min_width = min_width.max(feature as usize + 1);
                (
                    child("nodes_truenodeids", tree_ids[i], true_ids[i])?,
                    child("nodes_falsenodeids", tree_ids[i], false_ids[i])?,
                )
            };
            nodes.push(Node {
                mode,
                feature,
                threshold: values[i],
                nan_true: nan_true.is_some_and(|t| t[i] != 0),
                a,
                b,
            });
        }

        // Leaves: group contributions per node so a leaf owns one contiguous slice.
        let leaf_attr = |s: &str| format!("{prefix}_{s}");
        let l_trees = req_ints(&leaf_attr("treeids"))?;
        let l_nodes = req_ints(&leaf_attr("nodeids"))?;
        attrs::check_len(
            &leaf_attr("nodeids"),
            l_nodes.len(),
            l_trees.len(),
            &leaf_attr("treeids"),
        )?;
        let l_ids = req_ints(&leaf_attr("ids"))?;
        attrs::check_len(
            &leaf_attr("ids"),
            l_ids.len(),
            l_trees.len(),
            &leaf_attr("treeids"),
        )?;
        let l_weights = attrs::floats(node, &leaf_attr("weights"))?
            .ok_or_else(|| attrs::missing(&leaf_attr("weights")))?;
        attrs::check_len(
            &leaf_attr("weights"),
            l_weights.len(),
            l_trees.len(),
            &leaf_attr("treeids"),
        )?;
        let mut per_node: Vec<Vec<(u32, f32)>> = vec![vec![]; n];
        for j in 0..l_trees.len() {
            let i = child(&leaf_attr("nodeids"), l_trees[j], l_nodes[j])? as usize;
            if nodes[i].mode != Mode::Leaf {
                bail!(
                    "attribute '{}': node {} of tree {} is not a leaf",
                    leaf_attr("nodeids"),
                    l_nodes[j],
                    l_trees[j]
                );
            }
            let target = usize::try_from(l_ids[j])
                .ok()
                .filter(|&t| t < n_targets)
                .ok_or_else(|| {
                    format_err!(
                        "attribute '{}': target {} out of 0..{n_targets}",
                        leaf_attr("ids"),
                        l_ids[j]
                    )
                })?;
            per_node[i].push((target as u32, l_weights[j]));
        }
        let mut leaves = Vec::with_capacity(l_trees.len());
        for (i, contributions) in per_node.into_iter().enumerate() {
            if nodes[i].mode == Mode::Leaf {
                nodes[i].a = leaves.len() as u32;
                leaves.extend(contributions);
                nodes[i].b = leaves.len() as u32;
            }
        }

        // Roots in tree-id order: ONNX does not fix the root's node id, so take the node of each
        // tree no branch points to.
        let mut is_child = vec![false; n];
        for node in nodes.iter().filter(|n| n.mode != Mode::Leaf) {
            is_child[node.a as usize] = true;
            is_child[node.b as usize] = true;
        }
        let mut roots: Vec<(i64, u32)> = Vec::new();
        for i in 0..n {
            if !is_child[i] {
                if roots.iter().any(|&(t, _)| t == tree_ids[i]) {
                    bail!(
                        "attribute 'nodes_treeids': tree {} has more than one root",
                        tree_ids[i]
                    );
                }
                roots.push((tree_ids[i], i as u32));
            }
        }
        roots.sort_by_key(|&(t, _)| t);
        let ensemble = Ensemble {
            roots: roots.into_iter().map(|(_, i)| i).collect(),
            nodes,
            leaves,
            n_targets,
            min_width,
        };
        ensemble.check_acyclic()?;
        Ok(ensemble)
    }

    /// Every node reachable exactly once from exactly one root: guarantees a walk terminates, so
    /// [`Ensemble::walk`] needs no step bound.
    fn check_acyclic(&self) -> TractResult<()> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<u32> = self.roots.clone();
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if std::mem::replace(&mut seen[i], true) {
                bail!("attribute 'nodes_truenodeids': node reached twice, the trees are not trees");
            }
            let node = self.nodes[i];
            if node.mode != Mode::Leaf {
                stack.push(node.a);
                stack.push(node.b);
            }
        }
        if seen.iter().any(|s| !s) {
            bail!(
                "attribute 'nodes_treeids': some nodes belong to a cycle unreachable from any root"
            );
        }
        Ok(())
    }

    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// The contributions of the leaf `row` reaches in tree `root`. `row` must hold at least
    /// `min_width` values (checked once per batch by the callers).
    #[inline]
    fn walk(&self, root: u32, row: &[f32]) -> &[(u32, f32)] {
        let mut node = self.nodes[root as usize];
        loop {
            // A leaf's feature id is meaningless (and unchecked against the width): test the mode
            // before reading the row.
            if node.mode == Mode::Leaf {
                return &self.leaves[node.a as usize..node.b as usize];
            }
            let x = row[node.feature as usize];
            let go_true = if x.is_nan() && node.nan_true {
                true
            } else {
                match node.mode {
                    Mode::Leq => x <= node.threshold,
                    Mode::Lt => x < node.threshold,
                    Mode::Gte => x >= node.threshold,
                    Mode::Gt => x > node.threshold,
                    Mode::Eq => x == node.threshold,
                    Mode::Neq => x != node.threshold,
                    Mode::Leaf => true,
                }
            };
            node = self.nodes[if go_true { node.a } else { node.b } as usize];
        }
    }

    /// Aggregated scores of one row into `scores` (`n_targets` long), base values not yet added;
    /// `touched[t]` says whether any leaf contributed to target `t` (MIN/MAX need it).
    pub(crate) fn score_row(
        &self,
        row: &[f32],
        agg: Aggregate,
        scores: &mut [f32],
        touched: &mut [bool],
    ) {
        scores.fill(0.0);
        touched.fill(false);
        for &root in &self.roots {
            for &(t, w) in self.walk(root, row) {
                let t = t as usize;
                match agg {
                    Aggregate::Sum | Aggregate::Average => scores[t] += w,
                    Aggregate::Min => {
                        if !touched[t] || w < scores[t] {
                            scores[t] = w
                        }
                    }
                    Aggregate::Max => {
                        if !touched[t] || w > scores[t] {
                            scores[t] = w
                        }
                    }
                }
                touched[t] = true;
            }
        }
        if agg == Aggregate::Average {
            let n = self.n_trees() as f32;
            scores.iter_mut().for_each(|s| *s /= n);
        }
    }

    /// Whether the ensemble only reads features that fit in `width`.
    pub(crate) fn check_width(&self, width: usize) -> TractResult<()> {
        if self.min_width > width {
            bail!(
                "attribute 'nodes_featureids': reads feature {}, input has {width} features",
                self.min_width - 1
            );
        }
        Ok(())
    }

    /// Iterates the leaf contributions, for translators that inspect the layout.
    pub(crate) fn leaf_targets(&self) -> impl Iterator<Item = u32> + '_ {
        self.leaves.iter().map(|&(t, _)| t)
    }

    /// Iterates the leaf weights.
    pub(crate) fn leaf_weights(&self) -> impl Iterator<Item = f32> + '_ {
        self.leaves.iter().map(|&(_, w)| w)
    }
}

/// Runs `f` over the rows of a tree op's `[N, W]` input, as f32, checking the width once.
pub(crate) fn with_rows<R>(
    input: &TValue,
    min_width: usize,
    f: impl FnOnce(&[f32], usize, usize) -> TractResult<R>,
) -> TractResult<R> {
    let t = input.cast_to::<f32>()?;
    let shape = t.shape();
    ensure!(
        shape.len() == 2,
        "expected a rank-2 input, got shape {shape:?}"
    );
    let (n, w) = (shape[0], shape[1]);
    ensure!(
        w >= min_width,
        "input has {w} features, the trees read up to {min_width}"
    );
    let plain = t.try_as_plain_ram()?;
    let data = plain.as_slice::<f32>()?;
    f(data, n, w)
}
