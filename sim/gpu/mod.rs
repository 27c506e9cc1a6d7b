//! GPU (H100 tensor-core) models.
