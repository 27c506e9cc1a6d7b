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
