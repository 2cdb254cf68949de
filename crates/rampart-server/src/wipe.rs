//! A request body that is zeroized when the request is done with it. The body holds the caller's raw input
//! (features, possibly personal data); once the pipeline, the audit digest and the response are finished, the
//! bytes are overwritten (with `zeroize`'s volatile writes, which the compiler cannot elide) before the
//! allocation goes back to the allocator, so a later heap disclosure or core dump does not find old inputs.
//!
//! What this covers and what it does not: it wipes the buffer the gateway collected the body into. A body that
//! arrived in several reads was copied into a fresh buffer by the collector and is always wiped; a body that
//! arrived in one read can still share hyper's connection buffer, which cannot be written through, and is then
//! left to be overwritten by that connection's next reads. Kernel socket buffers, TLS record buffers, the
//! decoded feature vectors and the model runtime's tensors are not covered — nor, for a GPU backend, device
//! memory, which the driver reuses without clearing (see README "Deployment").

use std::ops::Deref;

use bytes::Bytes;
use zeroize::Zeroize;

/// The body bytes, wiped on drop where this is their only owner.
pub(crate) struct WipedBody(Bytes);

impl WipedBody {
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl Deref for WipedBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBody {
    fn drop(&mut self) {
        drop(wipe(std::mem::take(&mut self.0)));
    }
}

/// Zeroizes `bytes` when it is the sole owner of its allocation and returns the wiped buffer; `None` when the
/// memory is shared. `try_into_mut` succeeds only for the sole owner: no copy, and never a write to memory
/// another `Bytes` can still read.
fn wipe(bytes: Bytes) -> Option<bytes::BytesMut> {
    let mut owned = bytes.try_into_mut().ok()?;
    owned.as_mut().zeroize();
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::{wipe, WipedBody};
    use bytes::Bytes;

    #[test]
    fn a_sole_owner_is_wiped() {
        let wiped = wipe(Bytes::from(vec![9u8; 32]));
        assert!(wiped.is_some_and(|m| m.len() == 32 && m.iter().all(|&b| b == 0)));
    }

    #[test]
    fn a_shared_buffer_is_never_written() {
        let shared = Bytes::from(vec![7u8; 64]);
        let body = WipedBody::new(shared.clone());
        assert_eq!(&body[..], &[7u8; 64][..]);
        drop(body);
        assert_eq!(&shared[..], &[7u8; 64][..]);
    }
}
