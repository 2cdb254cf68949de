//! JWT bearer tokens (RFC 7519) verified against a JWKS file (RFC 7517). Only asymmetric algorithms are
//! accepted (RS256, ES256, EdDSA): with a public key set, accepting HS* would let anyone sign with the public
//! key as the HMAC secret (key confusion), and `alg: none` is not an algorithm `jsonwebtoken` parses at all.
//!
//! A token must name its key (`kid`), and the key's family must match the token's `alg`. `iss`, `aud`, `exp`
//! and `sub` are required, `nbf` is enforced when present, both with the configured leeway. Every failure is
//! the same [`crate::auth::Unauthenticated`]: the client learns nothing about which check failed.

use std::collections::HashMap;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use rampart_core::Identity;

use crate::config::JwtConfig;

/// Largest JWKS file read.
const MAX_JWKS_BYTES: u64 = 1 << 20;
/// Longest token considered; real tokens are well under this.
const MAX_TOKEN_BYTES: usize = 8192;

/// An algorithm name from the config, if it is one Rampart accepts.
pub(crate) fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Why the JWT settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The JWKS file could not be read.
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a JWKS, or a key without `kid`, or a key that is not a public key of an accepted family.
    #[error("JWKS file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The verifier built from `[auth] jwt`.
pub struct JwtVerifier {
    keys: HashMap<String, DecodingKey>,
    validations: HashMap<Algorithm, Validation>,
    roles_claim: String,
}

impl JwtVerifier {
    /// Loads the JWKS and prepares one validation per accepted algorithm.
    ///
    /// # Errors
    /// [`JwksError`] naming the file.
    pub fn load(cfg: &JwtConfig, jwks_path: &Path) -> Result<Self, JwksError> {
        use std::io::Read;
        let path = jwks_path.display().to_string();
        let read_err = |source| JwksError::Read {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(jwks_path).map_err(read_err)?;
        let mut text = String::new();
        // Bounded by `take`; the ban targets unbounded reads.
        #[allow(clippy::disallowed_methods)]
        file.take(MAX_JWKS_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        let invalid = |message: String| JwksError::Invalid {
            path: path.clone(),
            message,
        };
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or_else(|| invalid(format!("keys[{i}] has no kid")))?;
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                return Err(invalid(format!(
                    "keys[{i}] ({kid}) is a symmetric key: refused"
                )));
            }
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| invalid(format!("keys[{i}] ({kid}): {e}")))?;
            if keys.insert(kid.clone(), key).is_some() {
                return Err(invalid(format!("kid {kid} appears twice")));
            }
        }
        let validations = cfg
            .algorithms
            .iter()
            .filter_map(|a| parse_algorithm(a))
            .map(|alg| {
                let mut v = Validation::new(alg);
                v.set_issuer(&[cfg.issuer.as_str()]);
                v.set_audience(&[cfg.audience.as_str()]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.leeway = cfg.leeway_s;
                v.validate_exp = true;
                v.validate_nbf = true;
                (alg, v)
            })
            .collect();
        Ok(Self {
            keys,
            validations,
            roles_claim: cfg.roles_claim.clone(),
        })
    }

    /// Verifies a token and returns its identity (`sub`) with its roles; `None` for any failure.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let validation = self.validations.get(&header.alg)?;
        let key = self.keys.get(header.kid.as_deref()?)?;
        // The key's family must match the algorithm: an RSA key never verifies an ES256 token.
        if key.family() != header.alg.family() {
            return None;
        }
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token, key, validation,
        )
        .ok()?;
        let sub = data.claims.get("sub")?.as_str()?;
        if sub.is_empty() || sub.len() > 256 || sub.chars().any(char::is_control) {
            return None;
        }
        let roles = match data.claims.get(&self.roles_claim) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Some(Identity::new(sub, roles))
    }
}
