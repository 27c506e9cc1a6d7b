//! cascade-einsum
