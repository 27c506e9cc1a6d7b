// ours_splitkv: GQA decode attention (one query token per sequence).
//   q:   [B, HQ, D] bf16           out: [B, HQ, D] bf16
//   k,v: [B, HKV, L, D] bf16 (KV cache), HQ = G * HKV, query head h uses KV head h / G
// Launch 1, decode_splitkv_g4_d128: grid = (nsplit, HKV, B), block = 128. A CTA
// takes one KV head and a chunk of `chunk` keys (<= 1024) for all G = 4 query
// heads of its group, so the cache is read once per group. Half-warps own keys
// (16 lanes x 16 bytes = one 256-byte row); scores go to shared memory; the
// chunk's max/sum and unnormalised partial output (fp32) go to HBM.
// Launch 2, decode_combine_d128: grid = (HQ, B), block = 128, merges the
// splits with the usual log-sum-exp rescaling.
#define DEC_G 4
#define DEC_D 128
#define DEC_CMAX 1024

DEVI uint4 zero_u4() {
  uint4 z;
  z.x = 0u;
  z.y = 0u;
  z.z = 0u;
  z.w = 0u;
  return z;
}

DEVI void unpack8(const uint4 v, float* f) {
  const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = f_as(w[i] << 16);
    f[2 * i + 1] = f_as(w[i] & 0xffff0000u);
  }
}

KERNEL void __launch_bounds__(128) decode_splitkv_g4_d128(const u16* q, const u16* kc, const u16* vc, float* po,
                                                          float* pm, float* pl, int hq, int hkv, int L,
                                                          int chunk, int nsplit, float scale) {
  __shared__ float sc[DEC_G][DEC_CMAX];
  __shared__ float red[8][DEC_G][DEC_D];
  __shared__ float stat[DEC_G][2];
  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int hw = tid >> 4, hl = tid & 15;  // half-warp id (0..7), lane in half-warp
  const int k_begin = split * chunk;
  const int nk = imin(L, k_begin + chunk) - k_begin;
  const long long kv_off = ((long long)(b * hkv + kvh) * L + k_begin) * DEC_D;
  const u16* Kp = kc + kv_off;
  const u16* Vp = vc + kv_off;

  float qr[DEC_G][8];
#pragma unroll
  for (int h = 0; h < DEC_G; ++h) {
    const uint4 raw = *(const uint4*)(q + ((long long)b * hq + kvh * DEC_G + h) * DEC_D + hl * 8);
    unpack8(raw, qr[h]);
  }

  // Phase 1: scores, 4 keys in flight per half-warp.
  for (int k0 = 0; k0 < nk; k0 += 32) {
    uint4 kr[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int key = k0 + u * 8 + hw;
      if (key < nk) kr[u] = *(const uint4*)(Kp + (long long)key * DEC_D + hl * 8);
      else kr[u] = zero_u4();
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      float kf[8];
      unpack8(kr[u], kf);
      float dot[DEC_G];
#pragma unroll
      for (int h = 0; h < DEC_G; ++h) {
        float a = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) a += qr[h][e] * kf[e];
        dot[h] = a;
      }
#pragma unroll
      for (int m = 8; m >= 1; m >>= 1)
#pragma unroll
        for (int h = 0; h < DEC_G; ++h) dot[h] += shfl_xor(dot[h], m);
      const int key = k0 + u * 8 + hw;
      if (hl == 0 && key < nk) {
#pragma unroll
        for (int h = 0; h < DEC_G; ++h) sc[h][key] = dot[h] * scale;
      }
    }
  }
  cta_sync();

  // Phase 2: per-head max and sum over the chunk (one warp per head).
  for (int h = warp; h < DEC_G; h += 4) {
    float mx = NEG_INF;
    for (int key = lane; key < nk; key += 32) mx = fmaxf(mx, sc[h][key]);
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) mx = fmaxf(mx, shfl_xor(mx, m));
    float sum = 0.0f;
    for (int key = lane; key < nk; key += 32) {
      const float p = expf(sc[h][key] - mx);
      sc[h][key] = p;
      sum += p;
    }
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) sum += shfl_xor(sum, m);
    if (lane == 0) {
      stat[h][0] = mx;
      stat[h][1] = sum;
    }
  }
  cta_sync();

  // Phase 3: unnormalised P V over the chunk.
  float acc[DEC_G][8];
#pragma unroll
  for (int h = 0; h < DEC_G; ++h)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.0f;
  for (int k0 = 0; k0 < nk; k0 += 32) {
    uint4 vr[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int key = k0 + u * 8 + hw;
      if (key < nk) vr[u] = *(const uint4*)(Vp + (long long)key * DEC_D + hl * 8);
      else vr[u] = zero_u4();
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int key = k0 + u * 8 + hw;
      if (key < nk) {
        float vf[8];
        unpack8(vr[u], vf);
#pragma unroll
        for (int h = 0; h < DEC_G; ++h) {
          const float p = sc[h][key];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[h][e] += p * vf[e];
        }
      }
    }
  }
#pragma unroll
  for (int h = 0; h < DEC_G; ++h)
#pragma unroll
    for (int e = 0; e < 8; ++e) red[hw][h][hl * 8 + e] = acc[h][e];
  cta_sync();
  for (int idx = tid; idx < DEC_G * DEC_D; idx += 128) {
    const int h = idx / DEC_D, dd = idx % DEC_D;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < 8; ++w) s += red[w][h][dd];
    const long long row = (long long)b * hq + kvh * DEC_G + h;
    po[(row * nsplit + split) * DEC_D + dd] = s;
  }
  if (tid < DEC_G) {
    const long long row = (long long)b * hq + kvh * DEC_G + tid;
    pm[row * nsplit + split] = stat[tid][0];
    pl[row * nsplit + split] = stat[tid][1];
  }
}

KERNEL void __launch_bounds__(128) decode_combine_d128(const float* po, const float* pm, const float* pl,
                                                       u16* out, int hq, int nsplit) {
  const long long row = (long long)blockIdx.y * hq + blockIdx.x;
  const float* m = pm + row * nsplit;
  const float* l = pl + row * nsplit;
  float M = NEG_INF;
  for (int s = 0; s < nsplit; ++s) M = fmaxf(M, m[s]);
  float lsum = 0.0f, acc = 0.0f;
  for (int s = 0; s < nsplit; ++s) {
    const float w = expf(m[s] - M);
    lsum += l[s] * w;
    acc += po[(row * nsplit + s) * DEC_D + threadIdx.x] * w;
  }
  out[row * DEC_D + threadIdx.x] = f2bf(acc / lsum);
}
