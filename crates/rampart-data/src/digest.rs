//! File digests: SHA-256 (what the world's tools check) and BLAKE3 (fast, tree-hashed), computed in one
//! streaming pass, in parallel across files.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// Read size: large enough to amortize syscalls, small enough to stay in L2.
const BUF_LEN: usize = 256 * 1024;

/// A file's size and digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    /// Bytes read.
    pub size: u64,
    /// SHA-256.
    pub sha256: [u8; 32],
    /// BLAKE3.
    pub blake3: [u8; 32],
}

/// Hashes a stream, calling `progress` with the bytes of each read.
///
/// # Errors
/// The reader's error.
pub fn hash_reader(mut r: impl Read, progress: &dyn Fn(u64)) -> std::io::Result<FileDigest> {
    let mut sha = Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut buf = vec![0u8; BUF_LEN];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        b3.update(&buf[..n]);
        size += n as u64;
        progress(n as u64);
    }
    Ok(FileDigest {
        size,
        sha256: sha.finalize().into(),
        blake3: *b3.finalize().as_bytes(),
    })
}

/// Hashes a file.
///
/// # Errors
/// Opening or reading it.
pub fn hash_file(path: &Path, progress: &dyn Fn(u64)) -> std::io::Result<FileDigest> {
    hash_reader(std::fs::File::open(path)?, progress)
}

/// The SHA-256 of a file, as lowercase hex.
///
/// # Errors
/// Opening or reading it.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(hash_file(path, &|_| {})?.sha256))
}

/// A file that could not be hashed: its index in the input, and why.
pub type HashFailure = (usize, std::io::Error);

/// What one worker hashed: (input index, digest).
type WorkerOutput = Result<Vec<(usize, FileDigest)>, HashFailure>;

/// Hashes `paths` on `workers` threads (files are handed out one at a time, so one huge file does not
/// hold up the rest); results in input order.
///
/// # Errors
/// The first file that could not be read, with its index.
pub fn hash_files(
    paths: &[&Path],
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FileDigest>, HashFailure> {
    let next = AtomicUsize::new(0);
    let workers = workers.clamp(1, paths.len().max(1));
    let per_worker: Vec<WorkerOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return Ok(done);
                        };
                        done.push((i, hash_file(path, progress).map_err(|e| (i, e))?));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err((
                        usize::MAX,
                        std::io::Error::other("a hashing thread panicked"),
                    ))
                })
            })
            .collect()
    });
    let mut out: Vec<Option<FileDigest>> = vec![None; paths.len()];
    for r in per_worker {
        for (i, d) in r? {
            out[i] = Some(d);
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, d)| d.ok_or_else(|| (i, std::io::Error::other("file was not hashed"))))
        .collect()
}

/// The number of hashing threads: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
