//! Ensembles: combining several members' probability outputs for one row, and measuring how much the
//! members disagree. Pure functions over `&[&[f32]]` (one probability vector per member), so the caller
//! decides how members are run (in process, remote, in parallel).
//!
//! Why disagreement matters: members trained differently rarely share the same adversarial directions,
//! so a high disagreement on an input is a cheap signal that it sits near some member's decision
//! boundary, or was crafted against one of them. It is a signal, not a guarantee: an attack that targets
//! the whole ensemble can make every member agree.

/// How the members' outputs are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Average of the members' probabilities (soft voting).
    Mean,
    /// Fraction of members whose argmax is each class (hard voting; ties in a member go to the lower
    /// class index).
    Vote,
}

/// Why members could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnsembleError {
    /// No members.
    #[error("an ensemble needs at least one member")]
    Empty,
    /// Members do not agree on the number of classes.
    #[error("member {member} has {got} classes, member 0 has {expected}")]
    ClassMismatch {
        /// The member at fault.
        member: usize,
        /// Classes of member 0.
        expected: usize,
        /// Classes of this member.
        got: usize,
    },
    /// A member returned a NaN or infinite probability.
    #[error("member {member} returned a non-finite probability")]
    NonFinite {
        /// The member at fault.
        member: usize,
    },
    /// Zero classes.
    #[error("members have no classes")]
    NoClasses,
}

/// How much the members disagree on one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disagreement {
    /// Largest L1 distance between two members' probability vectors, in [0, 2]; 0 with one member.
    pub max_pairwise_l1: f64,
    /// Fraction of members whose argmax is not the most voted class, in [0, 1).
    pub vote_disagreement: f64,
}

fn check(members: &[&[f32]]) -> Result<usize, EnsembleError> {
    let first = members.first().ok_or(EnsembleError::Empty)?;
    let classes = first.len();
    if classes == 0 {
        return Err(EnsembleError::NoClasses);
    }
    for (member, m) in members.iter().enumerate() {
        if m.len() != classes {
            return Err(EnsembleError::ClassMismatch {
                member,
                expected: classes,
                got: m.len(),
            });
        }
        if m.iter().any(|v| !v.is_finite()) {
            return Err(EnsembleError::NonFinite { member });
        }
    }
    Ok(classes)
}

/// Index of the largest value, the lowest index on ties (values are finite: [`check`] ran).
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn votes(members: &[&[f32]], classes: usize) -> Vec<usize> {
    let mut votes = vec![0usize; classes];
    for m in members {
        votes[argmax(m)] += 1;
    }
    votes
}

/// Combines the members' probabilities for one row into one vector of `classes` values summing to 1.
///
/// # Errors
/// [`EnsembleError`] when there are no members, they differ in length, or one has a non-finite value.
pub fn aggregate(members: &[&[f32]], how: Aggregation) -> Result<Vec<f32>, EnsembleError> {
    let classes = check(members)?;
    let k = members.len() as f64;
    Ok(match how {
        Aggregation::Mean => (0..classes)
            .map(|c| (members.iter().map(|m| f64::from(m[c])).sum::<f64>() / k) as f32)
            .collect(),
        Aggregation::Vote => votes(members, classes)
            .into_iter()
            .map(|v| (v as f64 / k) as f32)
            .collect(),
    })
}

/// How much the members disagree on one row (see [`Disagreement`]).
///
/// # Errors
/// As [`aggregate`].
pub fn disagreement(members: &[&[f32]]) -> Result<Disagreement, EnsembleError> {
    let classes = check(members)?;
    let mut max_pairwise_l1 = 0.0_f64;
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            let d: f64 = a
                .iter()
                .zip(b.iter())
                .map(|(&p, &q)| (f64::from(p) - f64::from(q)).abs())
                .sum();
            max_pairwise_l1 = max_pairwise_l1.max(d);
        }
    }
    let top = votes(members, classes).into_iter().max().unwrap_or(0);
    Ok(Disagreement {
        max_pairwise_l1,
        vote_disagreement: 1.0 - top as f64 / members.len() as f64,
    })
}

#[cfg(test)]
mod tests;
