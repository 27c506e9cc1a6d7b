//! Errors of the GPU models.

use super::op::OpParseError;

/// Why an op, mapping or spec cannot be modelled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// The op spec does not parse.
    #[error(transparent)]
    Parse(#[from] OpParseError),
    /// The architecture has no `[gpu]` section.
    #[error("architecture `{0}` has no GPU section")]
    NotAGpu(String),
    /// The spec has no dense rate for the dtype.
    #[error("GPU spec has no tensor_flops_per_clk_per_sm entry `{0}`")]
    MissingRate(String),
    /// The mapping list does not match the op's kernels.
    #[error("mapping has {got} kernel(s) but the op launches {expected}: {names}")]
    KernelCount {
        /// Kernels in the mapping.
        got: usize,
        /// Kernels the op launches.
        expected: usize,
        /// Their names.
        names: String,
    },
    /// One kernel's mapping is invalid (tile shape, resources, instruction class).
    #[error("kernel {kernel}: {field}: {message}")]
    Mapping {
        /// The kernel's name.
        kernel: String,
        /// The offending mapping field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The op's tensors do not fit in device memory.
    #[error("`{op}` needs {need_bytes:.4e} B of tensors but gpu.hbm is {have_bytes:.4e} B")]
    DeviceMemory {
        /// The op spec.
        op: String,
        /// Bytes of its inputs and outputs.
        need_bytes: f64,
        /// The spec's device memory.
        have_bytes: f64,
    },
    /// An element count of the op is beyond what the models count exactly.
    #[error("`{op}`: {what} = {value:.4e} exceeds 2^53 = 9.0072e15, the largest count the GPU models take")]
    TooLarge {
        /// The op spec.
        op: String,
        /// The product of keys, e.g. `b·h·n·m (scores)`.
        what: String,
        /// Its value.
        value: f64,
    },
    /// No mapping in the search space fits the GPU.
    #[error("no valid mapping for kernel {kernel} of `{op}`{reason}")]
    NoMapping {
        /// The op spec.
        op: String,
        /// The kernel's name.
        kernel: String,
        /// Why the candidates failed (e.g. `: … CTAs exceed the 2^31 - 1 CTAs of a CUDA grid`),
        /// or empty.
        reason: String,
    },
}
