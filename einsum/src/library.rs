//! The built-in cascade library (`einsum/cascades/*.ein`), embedded in the binary.

use crate::check::{check_source, Checked};
use crate::diag::CheckError;

/// (name, source text) of every built-in cascade.
pub const CASCADES: &[(&str, &str)] = &[
    (
        "attention_3pass",
        include_str!("../cascades/attention_3pass.ein"),
    ),
    (
        "attention_2pass",
        include_str!("../cascades/attention_2pass.ein"),
    ),
    (
        "attention_1pass",
        include_str!("../cascades/attention_1pass.ein"),
    ),
    ("gqa_decode", include_str!("../cascades/gqa_decode.ein")),
    ("gemm", include_str!("../cascades/gemm.ein")),
    ("ffn_gelu", include_str!("../cascades/ffn_gelu.ein")),
    ("ffn_relu", include_str!("../cascades/ffn_relu.ein")),
    ("ffn_swiglu", include_str!("../cascades/ffn_swiglu.ein")),
    ("rmsnorm", include_str!("../cascades/rmsnorm.ein")),
    ("layernorm", include_str!("../cascades/layernorm.ein")),
    ("moe", include_str!("../cascades/moe.ein")),
    ("moe_gelu", include_str!("../cascades/moe_gelu.ein")),
    ("conv2d", include_str!("../cascades/conv2d.ein")),
    ("conv2d_s2", include_str!("../cascades/conv2d_s2.ein")),
    ("conv1d", include_str!("../cascades/conv1d.ein")),
    ("conv1d_s2", include_str!("../cascades/conv1d_s2.ein")),
    ("conv1d_s5", include_str!("../cascades/conv1d_s5.ein")),
    (
        "depthwise_conv2d",
        include_str!("../cascades/depthwise_conv2d.ein"),
    ),
    ("maxpool2d_s2", include_str!("../cascades/maxpool2d_s2.ein")),
    (
        "global_avgpool",
        include_str!("../cascades/global_avgpool.ein"),
    ),
];

/// Source text of a built-in cascade.
pub fn source(name: &str) -> Option<&'static str> {
    CASCADES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

pub fn names() -> Vec<&'static str> {
    CASCADES.iter().map(|(n, _)| *n).collect()
}

/// Parse and check a built-in cascade.
pub fn load(name: &str) -> Result<Checked, CheckError> {
    let text = source(name).unwrap_or_else(|| panic!("no built-in cascade `{name}`"));
    check_source(&format!("einsum/cascades/{name}.ein"), text)
}
