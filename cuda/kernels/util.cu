// Utility kernels: on-device random fill (fresh inputs for every case) and a
// full-tensor scan for non-finite values (outputs are poisoned with NaN before
// the checked launch, so any NaN left means an element that was never written).

DEVI u64 splitmix64(u64 x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// p[i] = bf16(uniform[-scale, scale)), grid-stride loop.
KERNEL void fill_rand_bf16(u16* p, long long n, u64 seed, float scale) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    u64 h = splitmix64(seed ^ ((u64)i * 0xD1B54A32D192ED03ull));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    p[i] = f2bf((2.0f * u - 1.0f) * scale);
  }
}

KERNEL void count_nonfinite_bf16(const u16* p, long long n, u64* count) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    if ((p[i] & 0x7f80u) == 0x7f80u) atomic_inc_u64(count);
  }
}

KERNEL void count_nonfinite_f32(const float* p, long long n, u64* count) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    if ((u_as(p[i]) & 0x7f800000u) == 0x7f800000u) atomic_inc_u64(count);
  }
}

// Pointer chase (diagnostic): line i of `lines` 128-byte lines (a power of two)
// points to line (1664525 i + 1013904223) mod lines, a full-period LCG (Hull-Dobell),
// so one chain visits every line in a scattered order. Word 0 of each line holds
// the next line's word index.
KERNEL void chase_init(u32* p, u32 lines) {
  long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < lines; i += stride) {
    const u64 nx = (1664525ull * (u64)i + 1013904223ull) & (u64)(lines - 1);
    p[i * 32] = (u32)(nx * 32ull);
  }
}

// One thread follows `steps` dependent loads from word `start`: the time per step
// is the load-to-use latency of the level the chain lives in.
KERNEL void chase_u32(const u32* p, int steps, int start, u32* out) {
  u32 j = (u32)start;
  for (int s = 0; s < steps; ++s) j = ld_cg_u32(p + j);  // L2 or HBM, never L1
  *out = j;
}

// Fixed-cost diagnostics (what a kernel pays besides its main loop):
// a CTA with the GEMM's 75776 bytes of dynamic shared memory that only writes one word...
KERNEL void __launch_bounds__(256) noop_dyn_smem(u32* out) {
  DYN_SMEM(smem_raw);
  if (threadIdx.x == 0) {
    smem_raw[0] = 1;
    out[blockIdx.x] = smem_raw[0];
  }
}

// ... and a CTA that stores a 128 x 128 bf16 tile (32 KB) from registers exactly as the GEMM
// epilogue does (8 warps of 64 x 32, m16n8 fragments: one 4-byte store per thread covers 8
// rows x 16 bytes per warp). Grid = tiles side by side along the columns.
KERNEL void __launch_bounds__(256) store_tile_bf16(u16* out, int ld) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = warp >> 2, wn = warp & 3;
  u16* base = out + (long long)blockIdx.x * 128;
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = wm * 64 + mt * 16 + (lane >> 2) + h * 8;
        const int col = wn * 32 + nt * 8 + 2 * (lane & 3);
        *(u32*)(base + (long long)row * ld + col) = 0x3f803f80u;
      }
}
