//! Quantities derived from a [`GpuSpec`], in the units the models use (seconds, bytes, bytes/s).
//!
//! Every hardware number comes from the spec, except the few CUDA C Programming Guide limits
//! that [`GpuSpec`] does not carry; those are named constants here with their source, and the
//! spec should grow fields for them if another GPU needs different values.

use super::op::Dtype;
use cascade_arch::GpuSpec;

/// Largest registers per thread (CUDA C Programming Guide, compute capability 9.0: 255).
pub const MAX_REGS_PER_THREAD: u32 = 255;
/// Largest threads per block (CUDA C Programming Guide, compute capability 9.0: 1024).
pub const MAX_THREADS_PER_CTA: u32 = 1024;
/// Shared memory the driver reserves per resident block (CUDA C Programming Guide, compute
/// capability 8.x/9.0: 1 KB per block, counted against the SM's shared memory).
pub const SMEM_RESERVED_PER_CTA: f64 = 1024.0;
/// Special-function (MUFU: `ex2`, `rcp`) results per clock per SM (CUDA C Programming Guide
/// arithmetic-instruction throughput table, compute capability 9.0: 16; the `h100` preset's
/// `cuda_core.exp` op encodes the same: 128 lanes, 8 cycles each). Not a [`GpuSpec`] field yet.
pub const SFU_PER_CLK_PER_SM: f64 = 16.0;
/// Register allocation granularity per thread (registers are allocated per warp in units of
/// 256, i.e. 8 per thread; CUDA occupancy calculator, compute capability 9.0).
pub const REG_ALLOC_PER_THREAD: u32 = 8;

/// Derived GPU quantities.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuParams {
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Clock sustained under load, Hz (the models run at this clock).
    pub clock_hz: f64,
    /// FP32 lanes per SM (`fp32_fma` FLOP/clk/SM ÷ 2).
    pub fp32_lanes_per_sm: f64,
    /// HBM bandwidth, bytes/s.
    pub hbm_bw: f64,
    /// HBM channels (memory controllers).
    pub hbm_channels: u32,
    /// L2 bandwidth, bytes/s (all SM↔L2 traffic, hits and misses, reads and writes).
    pub l2_bw: f64,
    /// L2 capacity, bytes.
    pub l2_bytes: f64,
    /// Shared memory per SM, bytes.
    pub smem_per_sm: f64,
    /// Largest shared-memory allocation of one block, bytes.
    pub smem_per_block_max: f64,
    /// 32-bit registers per SM.
    pub regs_per_sm: f64,
    /// Resident blocks per SM, at most.
    pub max_ctas_per_sm: u32,
    /// Resident threads per SM, at most.
    pub max_threads_per_sm: u32,
    /// L2 hit latency, seconds.
    pub l2_latency_s: f64,
    /// L2-miss latency (L2 + DRAM), seconds.
    pub miss_latency_s: f64,
    /// Kernel launch overhead, seconds.
    pub launch_s: f64,
    spec: GpuSpec,
}

impl GpuParams {
    /// Derives the quantities from a spec.
    pub fn new(spec: &GpuSpec) -> GpuParams {
        let clock_hz = spec.clock_sustained.hz();
        let cyc = |c: u32| f64::from(c) / clock_hz;
        GpuParams {
            sms: spec.sms,
            clock_hz,
            fp32_lanes_per_sm: spec
                .tensor_flops_per_clk_per_sm
                .get("fp32_fma")
                .map_or(0.0, |f| f / 2.0),
            hbm_bw: spec.hbm_bandwidth.bytes_per_s(),
            hbm_channels: spec.hbm_channels.max(1),
            l2_bw: spec.l2_bandwidth.bytes_per_s(),
            l2_bytes: spec.l2.bytes(),
            smem_per_sm: spec.smem_per_sm.bytes(),
            smem_per_block_max: spec.smem_per_block_max.bytes(),
            regs_per_sm: spec.registers_per_sm.bytes() / 4.0,
            max_ctas_per_sm: spec.max_ctas_per_sm,
            max_threads_per_sm: spec.max_threads_per_sm,
            l2_latency_s: cyc(spec.l2_latency_cycles),
            miss_latency_s: cyc(spec.l2_latency_cycles + spec.dram_latency_cycles),
            launch_s: spec.launch_overhead.seconds(),
            spec: spec.clone(),
        }
    }

    /// The spec these quantities came from.
    pub fn spec(&self) -> &GpuSpec {
        &self.spec
    }

    /// Dense matrix FLOP per clock per SM for `dtype` on tensor cores (`None` if the spec lacks
    /// the dtype or the dtype does not run on tensor cores).
    pub fn tensor_flops_per_clk(&self, dtype: Dtype) -> Option<f64> {
        if !dtype.on_tensor_cores() {
            return None;
        }
        self.spec
            .tensor_flops_per_clk_per_sm
            .get(dtype.spec_key())
            .copied()
    }

    /// FP32 FMA FLOP per clock per SM on CUDA cores.
    pub fn cuda_core_flops_per_clk(&self) -> f64 {
        2.0 * self.fp32_lanes_per_sm
    }

    /// Seconds for `ops` FP32-pipe operations on one SM.
    pub fn fp32_ops_s(&self, ops: f64) -> f64 {
        ops / (self.fp32_lanes_per_sm.max(1.0) * self.clock_hz)
    }

    /// Seconds for `n` special-function results (exp) on one SM.
    pub fn sfu_ops_s(&self, n: f64) -> f64 {
        n / (SFU_PER_CLK_PER_SM * self.clock_hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h100_quantities() {
        let arch = cascade_arch::preset("h100").unwrap();
        let p = GpuParams::new(arch.gpu.as_ref().unwrap());
        assert_eq!(p.sms, 132);
        assert_eq!(p.fp32_lanes_per_sm, 128.0);
        assert_eq!(p.regs_per_sm, 65536.0);
        assert_eq!(p.hbm_bw, 3.35e12);
        assert!((p.miss_latency_s - 431.0 / 1.83e9).abs() < 1e-15);
        let peak = p.tensor_flops_per_clk(Dtype::Bf16).unwrap() * 132.0 * p.clock_hz;
        assert!((peak - 989.4e12).abs() / 989.4e12 < 1e-3);
        assert_eq!(p.tensor_flops_per_clk(Dtype::Fp32), None);
    }
}
