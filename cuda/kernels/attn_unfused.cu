// Unfused attention, three launches per forward (Q, K, V, O: [b*h, n, d] bf16):
//   1. attn_scores_nt:  S = scale * Q K^T       -> fp32 [b*h, n, n] in HBM
//   2. softmax_rows:    P = softmax_row(S)       -> bf16 [b*h, n, n] in HBM
//   3. attn_pv_d{64,128}: O = P V                -> bf16 [b*h, n, d]
// Preconditions: n % 128 == 0, d in {64, 128}.

// grid = (n/128, n/128, b*h), block = 256, dynamic smem 81920 bytes
KERNEL void __launch_bounds__(256) attn_scores_nt(const u16* Q, const u16* Kmat, float* S, int n, int d,
                                                  float scale) {
  DYN_SMEM(smem_raw);
  const long long z = blockIdx.z;
  gemm_tile<128, 128, true, true, GEMM_STAGES>(Q + z * n * d, Kmat + z * n * d, S + z * (long long)n * n, d, d, d,
                                               n, scale, blockIdx.y * 128, blockIdx.x * 128, (u16*)smem_raw);
}

// One CTA (256 threads) per row; ncols % 4 == 0. grid = (rows), block = 256
DEVI float block_reduce(float v, bool is_max, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) {
    float o = shfl_xor(v, m);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  if (lane == 0) red[warp] = v;
  cta_sync();
  float r = red[0];
  for (int w = 1; w < (int)(blockDim.x >> 5); ++w) r = is_max ? fmaxf(r, red[w]) : r + red[w];
  cta_sync();  // red is reused by the next reduction
  return r;
}

KERNEL void __launch_bounds__(256) softmax_rows(const float* S, u16* P, int ncols) {
  __shared__ float red[32];
  const long long row = blockIdx.x;
  const float4* s4 = (const float4*)(S + row * ncols);
  u16* p = P + row * ncols;
  const int n4 = ncols / 4;
  float m = NEG_INF;
  for (int j = threadIdx.x; j < n4; j += blockDim.x) {
    float4 v = s4[j];
    m = fmaxf(m, fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)));
  }
  m = block_reduce(m, true, red);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < n4; j += blockDim.x) {
    float4 v = s4[j];
    sum += expf(v.x - m) + expf(v.y - m) + expf(v.z - m) + expf(v.w - m);
  }
  sum = block_reduce(sum, false, red);
  const float inv = 1.0f / sum;
  for (int j = threadIdx.x; j < n4; j += blockDim.x) {
    float4 v = s4[j];
    uint2 o;
    o.x = pack_bf16(expf(v.x - m) * inv, expf(v.y - m) * inv);
    o.y = pack_bf16(expf(v.z - m) * inv, expf(v.w - m) * inv);
    *(uint2*)(p + 4 * j) = o;
  }
}

// grid = (1, n/128, b*h), block = 256, dynamic smem 59392 (d=64) / 75776 (d=128) bytes
KERNEL void __launch_bounds__(256) attn_pv_d64(const u16* P, const u16* V, u16* O, int n) {
  DYN_SMEM(smem_raw);
  const long long z = blockIdx.z;
  gemm_tile<128, 64, false, false, GEMM_STAGES>(P + z * (long long)n * n, V + z * n * 64, O + z * n * 64, n, n,
                                                64, 64, 1.0f, blockIdx.y * 128, 0, (u16*)smem_raw);
}
KERNEL void __launch_bounds__(256) attn_pv_d128(const u16* P, const u16* V, u16* O, int n) {
  DYN_SMEM(smem_raw);
  const long long z = blockIdx.z;
  gemm_tile<128, 128, false, false, GEMM_STAGES>(P + z * (long long)n * n, V + z * n * 128, O + z * n * 128, n,
                                                 n, 128, 128, 1.0f, blockIdx.y * 128, 0, (u16*)smem_raw);
}
