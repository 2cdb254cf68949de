//! Validated input rows.

/// Rows of model input that passed decoding: `rows × width` finite `f32` values, row-major.
///
/// The only constructor checks the invariants, so a guard or backend that receives `Features` never has to.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    data: Vec<f32>,
    rows: usize,
    width: usize,
}

/// Why a buffer is not valid [`Features`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FeaturesError {
    /// Width zero, no rows, or a length that is not `rows × width`.
    #[error("expected {rows} rows of {width} values, got {len} values")]
    Shape {
        /// Rows expected.
        rows: usize,
        /// Width expected.
        width: usize,
        /// Values given.
        len: usize,
    },
    /// A NaN or infinity at this flat index.
    #[error("value {index} is not finite")]
    NonFinite {
        /// Flat index of the value.
        index: usize,
    },
}

impl Features {
    /// Checks shape and finiteness.
    ///
    /// # Errors
    /// [`FeaturesError`] when `data.len() != rows * width`, either is zero, or a value is not finite.
    pub fn new(data: Vec<f32>, rows: usize, width: usize) -> Result<Self, FeaturesError> {
        if rows == 0 || width == 0 || rows.checked_mul(width) != Some(data.len()) {
            return Err(FeaturesError::Shape {
                rows,
                width,
                len: data.len(),
            });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(FeaturesError::NonFinite { index });
        }
        Ok(Self { data, rows, width })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// One row.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(self.width)?;
        self.data.get(start..start + self.width)
    }

    /// Iterates over rows.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.width)
    }

    /// The canonical bytes of the input (little-endian `f32`, row-major), as digested by the audit log, so the
    /// same rows give the same digest whichever wire format carried them.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() * 4);
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}
