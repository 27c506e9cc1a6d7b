//! cascade-arch
