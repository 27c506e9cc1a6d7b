//! Quantities derived from a [`GpuSpec`], in the units the models use (seconds, bytes, bytes/s).
//!
//! Every hardware number comes from the spec, except the few CUDA C Programming Guide limits
//! that [`GpuSpec`] does not carry; those are named constants here with their source, and the
//! spec should grow fields for them if another GPU needs different values.

use super::mapping::InstrClass;
use super::op::Dtype;
use crate::dram::SustainedRates;
use cascade_arch::GpuSpec;
use serde::Serialize;

/// Largest registers per thread (CUDA C Programming Guide, compute capability 9.0: 255).
pub const MAX_REGS_PER_THREAD: u32 = 255;
/// Largest threads per block (CUDA C Programming Guide, compute capability 9.0: 1024).
pub const MAX_THREADS_PER_CTA: u32 = 1024;
/// Shared memory the driver reserves per resident block (CUDA C Programming Guide, compute
/// capability 8.x/9.0: 1 KB per block, counted against the SM's shared memory).
pub const SMEM_RESERVED_PER_CTA: f64 = 1024.0;
/// Combined L1 data cache and shared memory per SM (NVIDIA H100 Tensor Core GPU Architecture
/// whitepaper: 256 KB; the H200 is the same GH100 SM): what a kernel's shared memory leaves of
/// it is its L1. Not a [`GpuSpec`] field yet.
pub const L1_SMEM_PER_SM: f64 = 256.0 * 1024.0;
/// Special-function (MUFU: `ex2`, `rcp`) results per clock per SM (CUDA C Programming Guide
/// arithmetic-instruction throughput table, compute capability 9.0: 16; the `h100` preset's
/// `cuda_core.exp` op encodes the same: 128 lanes, 8 cycles each). Not a [`GpuSpec`] field yet.
pub const SFU_PER_CLK_PER_SM: f64 = 16.0;
/// Warp-shuffle results per clock per SM (CUDA C Programming Guide arithmetic-instruction
/// throughput table, compute capability 9.0: 32, i.e. one warp-wide `shfl` per clock).
pub const SHUFFLES_PER_CLK_PER_SM: f64 = 32.0;
/// Register allocation granularity per thread (registers are allocated per warp in units of
/// 256, i.e. 8 per thread; CUDA occupancy calculator, compute capability 9.0).
pub const REG_ALLOC_PER_THREAD: u32 = 8;

/// How much longer a dependent 1 KiB load's round trip takes when other CTAs keep theirs in
/// flight: `(k, seconds)`, `k` chains per SM (one CTA of 128 threads each, every thread loading
/// 8 bytes and storing them back, one block in flight at a time) against the round trip of a
/// lone chain per SM. MEASURED on the H200 (`scripts/gpu/chase_load.cu`, `reports/crosscheck/
/// h200/chase_load.csv`, 2026-12-03; a development microbenchmark of the memory system, in no
/// score): 391.5 ns with one chain per SM, 495.7 with 4, 779.0 with 10, 1,156.8 with 16, while
/// the chains move 0.69, 2.18, 3.47 and 3.74 TB/s (Little's law) of the DRAM model's 4.46 for
/// a copy. Without the stores the round trip grows from 385.6 to 602.7 ns only: the store
/// traffic sharing HBM (and the reads queueing behind it) is most of the growth. The values
/// are the `write = 1` rows, minus the first.
pub const LOADED_ROUND_TRIP: &[(f64, f64)] = &[
    (1.0, 0.0),
    (2.0, 39.3e-9),
    (3.0, 72.4e-9),
    (4.0, 104.2e-9),
    (6.0, 176.3e-9),
    (8.0, 276.9e-9),
    (10.0, 387.5e-9),
    (11.0, 443.1e-9),
    (12.0, 519.5e-9),
    (14.0, 645.1e-9),
    (16.0, 765.3e-9),
];
/// The copy rate of the DRAM model on `hbm3e_h200` (bytes/s), under which
/// [`LOADED_ROUND_TRIP`] was measured: another GPU's load is scaled to it.
const LOADED_ROUND_TRIP_HBM_BW: f64 = 4_457_473_218_840.333;
/// SMs of the GPU [`LOADED_ROUND_TRIP`] was measured on, and bytes each of its chains moves per
/// round trip (1 KiB loaded, 1 KiB stored).
const LOADED_ROUND_TRIP_SMS: f64 = 132.0;
const LOADED_ROUND_TRIP_BYTES: f64 = 2048.0;

/// Clocks that one `ldmatrix.x4` adds to a sub-partition's `mma.sync` stream when the loads
/// for the next k-slice overlap the MMAs of the current one (FlashAttention-2's `flash::gemm`).
/// MEASURED on the H200 (`scripts/gpu/mma_ldm_chain.cu`, `reports/crosscheck/h200/
/// mma_ldm_chain.txt`, 2026-12-02): per 16-MMA k-slice (96 clocks of MMAs alone), 2, 4 and 6
/// dependent `ldmatrix.x4` per warp take 102.3, 106.5 and 111.1 clocks with two warps per
/// sub-partition (FA2's occupancy), 6.3–15.1 clocks more, 2.5–3.2 per load; the value is the
/// 6-load case, FA2's Q·Kᵀ ratio at d = 128. Shared-memory bandwidth alone (16 clocks per load
/// per sub-partition) does not bind there. A development microbenchmark, in no score.
pub const LDMATRIX_X4_EXPOSED_CLK: f64 = 2.5;

/// How much longer each step of FlashAttention-2's causal kernel takes in its `Is_even_MN =
/// false` variant (a query or key count that is not a multiple of its 128-row and 128-key
/// blocks) than in the even one. MEASURED on the H200 with Nsight Compute
/// (`scripts/gpu/uneven_attention_ncu.py`, `reports/crosscheck/h200/uneven_attention_ncu.csv`
/// and `uneven_attention_stalls.csv`, 2026-12-02): at b = 40, h = 16, d = 64 the 448-token
/// kernel takes 1.347× the 512-token one's time (event medians 0.2356 and 0.1749 ms, warm) on
/// the same grid of 4 × 40 × 16 CTAs, where the model's steps alone give 0.98×; its warps stall
/// 2.77 cycles per issued instruction waiting for an instruction (`no_instruction`) against
/// 1.37, and it issues 1.19× the instructions — the variant's code (predicated copies, both
/// masking paths) does not stay in the instruction cache. The non-causal uneven variant loses
/// little (192 tokens: 1.02× of 256 by events, with a higher issue rate), so the factor is for
/// causal grids only. The value makes the model reproduce the 448 / 512 ratio
/// (`tests::fa2_uneven_causal_factor_reproduces_its_measurement`); that shape,
/// `sdpa_flash_b40h16n448d64c`, is a calibration case (in no score).
pub const FA2_UNEVEN_CAUSAL_STEP: f64 = 1.45;

/// Shared-memory bytes per clock per SM: 32 banks × 4 bytes (CUDA C Programming Guide, shared
/// memory, compute capability 9.0; the `h100` preset's `smem` level encodes the same with
/// `width_bits = 1024`). Loads (`ldmatrix`) and the stores of `cp.async` fills share it.
pub const SMEM_BYTES_PER_CLK_PER_SM: f64 = 128.0;

/// Ceilings measured on the GPU itself: what a vendor-tuned dense GEMM and a device-to-device
/// copy reach. GPU.md asks for them next to every cross-check, measured in the same run; the
/// models use them as the achievable rates of `wgmma` matrix work and of HBM ([`GpuParams`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ceilings {
    /// bf16 GEMM 8192×8192×8192 through cuBLAS (wgmma kernels), FLOP/s.
    pub gemm_flops: f64,
    /// Device-to-device copy of 1 GiB, bytes/s counting reads and writes.
    pub copy_bytes_per_s: f64,
}

impl Ceilings {
    /// The H100 SXM5 run of 2026-11-26 (reports/crosscheck/h100_measured_helper.md, "Measured
    /// ceilings (same run)"): cuBLAS bf16 8192³ 801.8 TFLOP/s, 1 GiB copy 3003 GB/s.
    pub const H100_RECORDED: Ceilings = Ceilings {
        gemm_flops: 801.8e12,
        copy_bytes_per_s: 3003e9,
    };

    /// The ceilings as fractions of `spec`'s peaks: (dense bf16 tensor rate, HBM bandwidth),
    /// each clamped to (0, 1].
    pub fn fractions(&self, spec: &GpuSpec) -> (f64, f64) {
        let frac = |x: f64, peak: Option<f64>| match peak {
            Some(p) if p > 0.0 && x > 0.0 => (x / p).min(1.0),
            _ => 1.0,
        };
        (
            frac(self.gemm_flops, spec.peak_flops("bf16")),
            frac(
                self.copy_bytes_per_s,
                Some(spec.hbm_bandwidth.bytes_per_s()),
            ),
        )
    }
}

/// Fraction of the `h100` preset's dense bf16 peak (989.4 TFLOP/s) that `wgmma` main loops
/// sustain: the value at which the model reproduces the recorded cuBLAS 8192³ GEMM (801.8
/// TFLOP/s including its tails; [`super::search::calibrate`] with [`Ceilings::H100_RECORDED`],
/// checked by a test). The default achievable rate of `wgmma`.
pub const WGMMA_MEASURED_FRACTION: f64 = 0.8250;
/// How much longer an `mma.sync` CTA's main-loop step takes when the CTA is alone on its SM
/// than the SM's issue-limited step time ([`super::plan::KernelPlan::step_s`]): with one CTA
/// (8 warps) per SM, each step's barrier, `ldmatrix` → `mma` dependencies and accumulator
/// chain are exposed; a second resident CTA's warps fill them. MEASURED on the H100 with the
/// diagnostic cases `diag_ours_mma_gemm_m{128,512}_n…_k{32,512,2048}` (1 and 16 CTAs, inputs
/// from HBM and from L2 alike; `reports/crosscheck/h100_diagnostics_measured.md`, 2026-11-26):
/// 0.578 µs per 128 × 128 × 32 step against the 0.495 µs the plan's step gives (ratio 1.17),
/// while with two or more CTAs per SM the per-SM step time is 0.52–0.53 µs (the plan's value
/// within 7%). Not measured for `wgmma` (one warpgroup issues asynchronously) or CUDA-core
/// kernels (their latency chains are modelled as round trips), so it applies to `mma.sync`
/// only.
pub const MMA_SYNC_LONE_STEP_FACTOR: f64 = 1.17;

/// Fraction of the `h100` preset's HBM bandwidth (3.35 TB/s) at which the model reproduces the
/// recorded 1 GiB device-to-device copy (3003 GB/s; calibrated the same way): the default
/// achievable HBM bandwidth, 3.01 TB/s.
pub const HBM_MEASURED_FRACTION: f64 = 0.8985;

/// Warp-wide global-memory requests that L2 serves per second, over the whole GPU: the bound on
/// kernels whose loads are narrow (a warp request of 32 lanes × `v` bytes moves `32·v` bytes,
/// so L2 delivers at most `rate × 32·v` bytes/s; with 16-byte lanes that exceeds the L2
/// bandwidth and never binds). CALIBRATED on the H200 (`gpu.measured_ceilings.
/// gemm_bf16_align1_8191_tflops`: cuBLAS's `align1` kernel with 2-byte loads, 152 TFLOP/s;
/// [`super::search::params`] fits this rate so the model reproduces it, which gives 28.6 G
/// requests/s = 1.83 TB/s for 64-byte requests); the fitted value is the default for GPUs whose
/// spec lacks that ceiling (the H100 has the same GH100 L2).
pub const L2_REQUESTS_MEASURED: f64 = 28.6e9;

/// The DRAM model's sustained rates on memory preset `name`, or `None` when it cannot give
/// them (a preset the architecture accepted always can: `cascade_arch` checks the name).
fn dram_rates(name: &str) -> Option<SustainedRates> {
    SustainedRates::of_preset(name).ok()
}

/// Derived GPU quantities.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuParams {
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Clock sustained under load, Hz (the models run at this clock).
    pub clock_hz: f64,
    /// FP32 lanes per SM (`fp32_fma` FLOP/clk/SM ÷ 2).
    pub fp32_lanes_per_sm: f64,
    /// Achievable HBM bandwidth of a copy (half reads, half writes), bytes/s: the DRAM model's
    /// rate on the spec's memory preset ([`GpuParams::hbm_rates`]) or, for a spec that names
    /// none, the spec's bandwidth times the measured copy ceiling's fraction of it (the
    /// whitepaper's 3.35 TB/s is the pin rate, which no access pattern reaches).
    pub hbm_bw: f64,
    /// What the cycle-level DRAM model sustains on the spec's memory preset (`levels[0].memory`)
    /// for sequential reads, copies and sequential writes ([`SustainedRates`]): a kernel's HBM
    /// rate is [`GpuParams::hbm_bw_for`] its share of reads. `None` when the spec names no
    /// preset (then every kernel gets [`GpuParams::hbm_bw`]).
    pub hbm_rates: Option<SustainedRates>,
    /// Fraction of the dense tensor peak that `wgmma` main loops sustain (the measured GEMM
    /// ceiling's fraction of the peak).
    pub wgmma_efficiency: f64,
    /// HBM channels (memory controllers).
    pub hbm_channels: u32,
    /// Device memory, bytes: an op whose tensors do not fit is refused.
    pub hbm_bytes: f64,
    /// L2 bandwidth, bytes/s (all SM↔L2 traffic, hits and misses, reads and writes).
    pub l2_bw: f64,
    /// L2 capacity, bytes.
    pub l2_bytes: f64,
    /// Warp-wide requests L2 serves per second ([`L2_REQUESTS_MEASURED`]).
    pub l2_requests_per_s: f64,
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
    /// Once per op: its start when timed alone (`gpu.op_start`), seconds.
    pub op_start_s: f64,
    /// What a kernel adds in CUDA-graph replay (`gpu.graph_launch`, else `launch_s`), seconds.
    pub graph_launch_s: f64,
    /// Dirty bytes in L2 when an op starts (`gpu.l2_dirty_at_op_start`): the op's first HBM
    /// reads evict them, adding their write-back to its HBM traffic.
    pub l2_dirty_at_op_start: f64,
    /// A `wgmma` kernel's start beyond `launch_s` (`gpu.wgmma_kernel_start`), seconds.
    pub wgmma_start_s: f64,
    /// Price every op at its roofline instead ([`super::search::roofline`]): the assumption
    /// set of Duplex's simulator, for cross-checks against it; false for predictions.
    pub roofline: bool,
    spec: GpuSpec,
}

impl GpuParams {
    /// Derives the quantities from a spec, with the achievable fractions of the recorded H100
    /// run ([`WGMMA_MEASURED_FRACTION`], [`HBM_MEASURED_FRACTION`]); for another GPU, or a
    /// new run, use [`super::search::calibrate`] with its measured ceilings.
    /// The HBM rates come from the DRAM model when the spec names a memory preset.
    pub fn new(spec: &GpuSpec) -> GpuParams {
        GpuParams::with_fractions(spec, WGMMA_MEASURED_FRACTION, HBM_MEASURED_FRACTION)
            .with_dram_rates()
    }

    /// These quantities with the HBM rates of the DRAM model on the spec's memory preset
    /// ([`SustainedRates::of_preset`]), replacing the fraction of the pin rate; unchanged when
    /// the spec names no preset.
    pub fn with_dram_rates(mut self) -> GpuParams {
        if let Some(r) = self.spec.memory.as_deref().and_then(dram_rates) {
            self.hbm_bw = r.copy;
            self.hbm_rates = Some(r);
        }
        self
    }

    /// These quantities for an op that runs inside a model step rather than alone between the
    /// protocol's flushes: no start of its own (`op_start`: the events around a lone op) and no
    /// dirty lines left by a flush (`l2_dirty_at_op_start`); with `graph`, each kernel adds the
    /// CUDA-graph replay gap (`graph_launch`) instead of the stream's `launch_overhead`.
    pub fn in_step(&self, graph: bool) -> GpuParams {
        let mut hw = self.clone();
        hw.op_start_s = 0.0;
        hw.l2_dirty_at_op_start = 0.0;
        if graph {
            hw.launch_s = hw.graph_launch_s;
        }
        hw
    }

    /// Achievable HBM bandwidth, bytes/s, of a kernel whose HBM bytes are `read_share` reads.
    pub fn hbm_bw_for(&self, read_share: f64) -> f64 {
        match &self.hbm_rates {
            Some(r) => r.at(read_share),
            None => self.hbm_bw,
        }
    }

    /// What a dependent load's round trip adds when `chains` chains per SM each keep one load
    /// of `bytes` (reads plus the stores that go with them) in flight ([`LOADED_ROUND_TRIP`]),
    /// seconds. The chains are mapped onto the measured ones by the HBM load they offer: their
    /// bytes, this GPU's SMs and its copy rate against the H200's. Linear between the measured
    /// points, 0 below one chain, and beyond sixteen along the last segment (an underestimate
    /// near saturation, where the curve steepens: fp32 rows reach about 21 chains).
    pub fn loaded_round_trip_s(&self, chains: f64, bytes: f64) -> f64 {
        let bw = self.hbm_bw_for(0.5);
        if bw.is_nan() || bw <= 0.0 {
            return 0.0;
        }
        let k = chains
            * (bytes / LOADED_ROUND_TRIP_BYTES)
            * (f64::from(self.sms) / LOADED_ROUND_TRIP_SMS)
            * (LOADED_ROUND_TRIP_HBM_BW / bw);
        let t = LOADED_ROUND_TRIP;
        if k.is_nan() || k <= t[0].0 {
            return 0.0;
        }
        let i = t
            .windows(2)
            .position(|w| k <= w[1].0)
            .unwrap_or(t.len() - 2);
        let ((k0, d0), (k1, d1)) = (t[i], t[i + 1]);
        d0 + (d1 - d0) * (k - k0) / (k1 - k0)
    }

    /// Derives the quantities from a spec and ceilings measured on that GPU, taking the
    /// ceilings literally as the achievable rates ([`super::search::calibrate`] instead makes
    /// the model reproduce them).
    pub fn with_ceilings(spec: &GpuSpec, ceilings: &Ceilings) -> GpuParams {
        let (wgmma, hbm) = ceilings.fractions(spec);
        GpuParams::with_fractions(spec, wgmma, hbm)
    }

    /// Derives the quantities from a spec with explicit achievable fractions of its dense
    /// tensor peak (`wgmma` main loops) and of its HBM bandwidth.
    pub fn with_fractions(spec: &GpuSpec, wgmma: f64, hbm: f64) -> GpuParams {
        let clock_hz = spec.clock_sustained.hz();
        let cyc = |c: u32| f64::from(c) / clock_hz;
        GpuParams {
            sms: spec.sms,
            clock_hz,
            fp32_lanes_per_sm: spec
                .tensor_flops_per_clk_per_sm
                .get("fp32_fma")
                .map_or(0.0, |f| f / 2.0),
            hbm_bw: spec.hbm_bandwidth.bytes_per_s() * hbm,
            hbm_rates: None,
            wgmma_efficiency: wgmma,
            hbm_channels: spec.hbm_channels.max(1),
            hbm_bytes: spec.hbm.bytes(),
            l2_bw: spec.l2_bandwidth.bytes_per_s(),
            l2_bytes: spec.l2.bytes(),
            l2_requests_per_s: L2_REQUESTS_MEASURED,
            smem_per_sm: spec.smem_per_sm.bytes(),
            smem_per_block_max: spec.smem_per_block_max.bytes(),
            regs_per_sm: spec.registers_per_sm.bytes() / 4.0,
            max_ctas_per_sm: spec.max_ctas_per_sm,
            max_threads_per_sm: spec.max_threads_per_sm,
            l2_latency_s: cyc(spec.l2_latency_cycles),
            miss_latency_s: cyc(spec.l2_latency_cycles + spec.dram_latency_cycles),
            launch_s: spec.launch_overhead.seconds(),
            op_start_s: spec.op_start.map_or(0.0, |d| d.seconds()),
            graph_launch_s: spec
                .graph_launch
                .map_or(spec.launch_overhead.seconds(), |d| d.seconds()),
            l2_dirty_at_op_start: spec.l2_dirty_at_op_start.map_or(0.0, |b| b.bytes()),
            wgmma_start_s: spec.wgmma_kernel_start.map_or(0.0, |d| d.seconds()),
            roofline: false,
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

    /// A kernel's start: the launch overhead, plus the `wgmma` kernels' set-up for them.
    pub fn start_s(&self, instr: InstrClass) -> f64 {
        self.launch_s
            + match instr {
                InstrClass::Wgmma => self.wgmma_start_s,
                _ => 0.0,
            }
    }

    /// Fraction of the dense peak that a main loop of `instr` sustains: the measured GEMM
    /// ceiling's fraction for `wgmma`, [`InstrClass::efficiency`] for the others.
    pub fn efficiency(&self, instr: InstrClass) -> f64 {
        match instr {
            InstrClass::Wgmma => self.wgmma_efficiency,
            i => i.efficiency(),
        }
    }

    /// L2 bandwidth for warp requests of 32 lanes × `vector` bytes: the L2 bandwidth, or the
    /// request rate times the request size when that is lower.
    pub fn l2_bw_for(&self, vector: u32) -> f64 {
        self.l2_bw
            .min(self.l2_requests_per_s * 32.0 * f64::from(vector))
    }

    /// Seconds for `bytes` of shared-memory traffic on one SM.
    pub fn smem_s(&self, bytes: f64) -> f64 {
        bytes / (SMEM_BYTES_PER_CLK_PER_SM * self.clock_hz)
    }

    /// FP32 FMA FLOP per clock per SM on CUDA cores.
    pub fn cuda_core_flops_per_clk(&self) -> f64 {
        2.0 * self.fp32_lanes_per_sm
    }

    /// Seconds for `ops` FP32-pipe operations on one SM.
    pub fn fp32_ops_s(&self, ops: f64) -> f64 {
        ops / (self.fp32_lanes_per_sm.max(1.0) * self.clock_hz)
    }

    /// Seconds for `n` warp-wide shuffles on one SM.
    pub fn shuffle_s(&self, n: f64) -> f64 {
        n * 32.0 / (SHUFFLES_PER_CLK_PER_SM * self.clock_hz)
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
        // HBM from the DRAM model on the level's preset; without one, the copy fraction.
        let rates = crate::dram::SustainedRates::of_preset("hbm3_h100").unwrap();
        assert_eq!(p.spec().memory.as_deref(), Some("hbm3_h100"));
        assert_eq!(p.hbm_bw, rates.copy);
        assert!((p.hbm_bw_for(0.75) - (rates.copy + rates.read) / 2.0).abs() < 1.0);
        let mut bare = arch.gpu.clone().unwrap();
        bare.memory = None;
        let p = GpuParams::new(&bare);
        assert!((p.hbm_bw - 0.8985 * 3.35e12).abs() < 1e3);
        assert_eq!(p.hbm_bw_for(1.0), p.hbm_bw);
        assert_eq!(p.wgmma_efficiency, WGMMA_MEASURED_FRACTION);
        let literal =
            GpuParams::with_ceilings(arch.gpu.as_ref().unwrap(), &Ceilings::H100_RECORDED);
        assert!((literal.hbm_bw - 3003e9).abs() < 1e3);
        assert!((literal.wgmma_efficiency * 989.36e12 / 801.8e12 - 1.0).abs() < 1e-3);
        assert!((p.miss_latency_s - 613.0 / 1.83e9).abs() < 1e-15);
        let peak = p.tensor_flops_per_clk(Dtype::Bf16).unwrap() * 132.0 * p.clock_hz;
        assert!((peak - 989.4e12).abs() / 989.4e12 < 1e-3);
        assert_eq!(p.tensor_flops_per_clk(Dtype::Fp32), None);
    }
}
