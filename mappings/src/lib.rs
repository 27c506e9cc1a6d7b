//! cascade-mappings
