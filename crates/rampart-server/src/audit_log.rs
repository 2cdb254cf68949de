//! How the `[audit]` config becomes a running audit writer: keys loaded once at start-up (a missing or
//! unreadable key stops the start with the file named), segments, checkpoints, pseudonyms and sealing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{CheckpointPolicy, RecordPolicy, WriterConfig};
use rampart_crypto::container::AeadKey;
use rampart_crypto::pseudonym::PseudonymKey;
use rampart_crypto::sign::{SigningKey, VerifyingKey};

use crate::config::{AuditConfig, RawConfig};
use crate::gateway::StartError;

/// The writer config for `[audit]`, with every key it names loaded, and the public half of the checkpoint
/// key (for the admin API's verification).
///
/// # Errors
/// [`StartError::File`] naming the key file that cannot be used.
pub(crate) fn writer_config(
    cfg: &RawConfig,
) -> Result<(WriterConfig, Option<VerifyingKey>), StartError> {
    let a: &AuditConfig = &cfg.audit;
    let durability = match a.durability {
        crate::config::Durability::Fsync => rampart_audit::Durability::Fsync,
        crate::config::Durability::Buffered => rampart_audit::Durability::Buffered,
    };
    let key_err = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        StartError::File(format!("audit {what} {}: {e}", path.display()))
    };
    let pseudonyms = match (&a.pseudonym_key_file, a.pseudonymize) {
        (Some(p), true) => {
            let path = cfg.resolve(p);
            Some(PseudonymKey::load(&path).map_err(|e| key_err("pseudonym key", &path, &e))?)
        }
        _ => None,
    };
    let seal = match &a.encryption_key_file {
        Some(p) => {
            let path = cfg.resolve(p);
            Some(Arc::new(
                AeadKey::load(&path).map_err(|e| key_err("encryption key", &path, &e))?,
            ))
        }
        None => None,
    };
    let mut policy = RecordPolicy::default();
    policy.pseudonyms = pseudonyms;
    policy.seal = seal;
    policy.store_input = a.store_input;
    let mut config = WriterConfig::new(durability).policy(policy).segments(
        a.segment_max_bytes,
        Duration::from_secs(a.segment_max_age_secs),
    );
    let mut public = None;
    match &a.signing_key_file {
        Some(p) => {
            let path = cfg.resolve(p);
            let key = SigningKey::load(&path).map_err(|e| key_err("signing key", &path, &e))?;
            tracing::info!(key = %key.id(), "audit checkpoints are signed");
            public = Some(key.verifying_key());
            let mut checkpoints = CheckpointPolicy::new(Arc::new(key));
            checkpoints.every_records = a.checkpoint_every;
            checkpoints.every = Duration::from_secs(a.checkpoint_interval_secs);
            config = config.checkpoints(checkpoints);
        }
        None => tracing::warn!(
            "no [audit] signing_key_file: the audit log is hash-chained but its checkpoints are not signed"
        ),
    }
    Ok((config, public))
}
