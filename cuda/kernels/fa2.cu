// ours_fa2: fused one-pass attention, FlashAttention-2 schedule.
// Q, K, V, O: [b*h, n, D] bf16 row-major. One CTA of 4 warps owns BR = 64 query
// rows (16 per warp, Q fragments kept in registers) and loops over BC = 64-key
// tiles of K/V (cp.async double-buffered in dynamic shared memory): S = Q K^T
// and O += P V on tensor cores (mma.sync m16n8k16 bf16, fp32 accumulate), online
// softmax in the exp2 domain, P re-packed from the S accumulators to bf16 A
// fragments without touching shared memory. Causal: key tiles 0..=qb only, the
// diagonal tile masked, heaviest query blocks scheduled first.
// grid = (n/64, b*h), block = 128, dynamic smem = 5 * 64 * (D+8) * 2 bytes.
// Precondition: n % 64 == 0.
#define FA_BR 64
#define FA_BC 64

template <int D>
DEVI void fa2_body(const u16* __restrict__ Q, const u16* __restrict__ Kg, const u16* __restrict__ Vg,
                   u16* __restrict__ O, int n, float scale_log2, int causal) {
  constexpr int ST = D + 8;  // smem row stride (elements)
  constexpr int DC = D / 16; // k16 chunks along d
  constexpr int DT = D / 8;  // n8 tiles along d
  DYN_SMEM(smem_raw);
  u16* Qs = (u16*)smem_raw;        // [BR][ST]
  u16* Ks = Qs + FA_BR * ST;       // [2][BC][ST]
  u16* Vs = Ks + 2 * FA_BC * ST;   // [2][BC][ST]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const long long base = (long long)blockIdx.y * n * D;
  const int qb = causal ? (int)(gridDim.x - 1 - blockIdx.x) : (int)blockIdx.x;
  const int q0 = qb * FA_BR;
  const int nkt = causal ? (qb + 1) : (n / FA_BC);

  for (int c = tid; c < FA_BR * D / 8; c += 128) {
    int r = c / (D / 8), cc = (c % (D / 8)) * 8;
    cp_async16(Qs + r * ST + cc, Q + base + (long long)(q0 + r) * D + cc);
  }
  cp_async_commit();

  auto load_kv = [&](int j, int stage) {
    const long long k0 = (long long)j * FA_BC;
    u16* kd = Ks + stage * FA_BC * ST;
    u16* vd = Vs + stage * FA_BC * ST;
    for (int c = tid; c < FA_BC * D / 8; c += 128) {
      int r = c / (D / 8), cc = (c % (D / 8)) * 8;
      cp_async16(kd + r * ST + cc, Kg + base + (k0 + r) * D + cc);
      cp_async16(vd + r * ST + cc, Vg + base + (k0 + r) * D + cc);
    }
  };
  load_kv(0, 0);
  cp_async_commit();
  cp_async_wait<1>();  // the Q group has landed
  cta_sync();

  u32 qf[DC][4];
#pragma unroll
  for (int kc = 0; kc < DC; ++kc)
    ldsm_x4(qf[kc], Qs + (warp * 16 + (lane & 15)) * ST + kc * 16 + (lane >> 4) * 8);

  float o[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[i][e] = 0.0f;
  float m_r[2] = {NEG_INF, NEG_INF};
  float l_r[2] = {0.0f, 0.0f};

  for (int j = 0; j < nkt; ++j) {
    if (j + 1 < nkt) load_kv(j + 1, (j + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile j has landed
    cta_sync();
    const u16* kb = Ks + (j & 1) * FA_BC * ST;
    const u16* vb = Vs + (j & 1) * FA_BC * ST;

    // S = Q K^T for this warp's 16 rows x 64 keys (8 n8 tiles).
    float s[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[i][e] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < DC; ++kc)
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        u32 r[4];
        int krow = np * 16 + (lane & 7) + (lane >> 4) * 8;
        int dcol = kc * 16 + ((lane >> 3) & 1) * 8;
        ldsm_x4(r, kb + krow * ST + dcol);
        u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_bf16(s[2 * np], qf[kc], b0);
        mma_bf16(s[2 * np + 1], qf[kc], b1);
      }

    if (causal && j == qb) {  // diagonal tile: q0 == k0, mask key > query
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int qr = warp * 16 + g + (e >> 1) * 8;
          int kcn = nt * 8 + 2 * t4 + (e & 1);
          if (kcn > qr) s[nt][e] = NEG_INF;
        }
    }

    // Online softmax; rh = 0 -> row g (elements 0,1), rh = 1 -> row g+8 (2,3).
#pragma unroll
    for (int rh = 0; rh < 2; ++rh) {
      float mx = NEG_INF;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * rh], s[nt][2 * rh + 1]));
      mx = fmaxf(mx, shfl_xor(mx, 1));
      mx = fmaxf(mx, shfl_xor(mx, 2));
      const float m_new = fmaxf(m_r[rh], mx * scale_log2);
      const float m_use = (m_new == NEG_INF) ? 0.0f : m_new;
      const float alpha = exp2f(m_r[rh] - m_use);
      float rs = 0.0f;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        float p0 = exp2f(s[nt][2 * rh] * scale_log2 - m_use);
        float p1 = exp2f(s[nt][2 * rh + 1] * scale_log2 - m_use);
        s[nt][2 * rh] = p0;
        s[nt][2 * rh + 1] = p1;
        rs += p0 + p1;
      }
      l_r[rh] = l_r[rh] * alpha + rs;  // per-lane partial, reduced over the quad at the end
      m_r[rh] = m_new;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        o[dt][2 * rh] *= alpha;
        o[dt][2 * rh + 1] *= alpha;
      }
    }

    // O += P V: P from registers (C layout of two n8 tiles == A layout of one k16 chunk).
#pragma unroll
    for (int kc2 = 0; kc2 < 4; ++kc2) {
      u32 pa[4];
      pa[0] = pack_bf16(s[2 * kc2][0], s[2 * kc2][1]);
      pa[1] = pack_bf16(s[2 * kc2][2], s[2 * kc2][3]);
      pa[2] = pack_bf16(s[2 * kc2 + 1][0], s[2 * kc2 + 1][1]);
      pa[3] = pack_bf16(s[2 * kc2 + 1][2], s[2 * kc2 + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        u32 r[4];
        ldsm_x4_t(r, vb + (kc2 * 16 + (lane & 15)) * ST + dp * 16 + (lane >> 4) * 8);
        u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_bf16(o[2 * dp], pa, b0);
        mma_bf16(o[2 * dp + 1], pa, b1);
      }
    }
    cta_sync();  // tile j's buffers are free for the load of tile j+2
  }

#pragma unroll
  for (int rh = 0; rh < 2; ++rh) {
    float l = l_r[rh];
    l += shfl_xor(l, 1);
    l += shfl_xor(l, 2);
    const float inv = 1.0f / l;
    const long long row = q0 + warp * 16 + g + rh * 8;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      *(u32*)(O + base + row * D + dt * 8 + 2 * t4) = pack_bf16(o[dt][2 * rh] * inv, o[dt][2 * rh + 1] * inv);
    }
  }
}

KERNEL void __launch_bounds__(128) fa2_fwd_d64(const u16* Q, const u16* K, const u16* V, u16* O, int n,
                                               float scale_log2, int causal) {
  fa2_body<64>(Q, K, V, O, n, scale_log2, causal);
}
KERNEL void __launch_bounds__(128) fa2_fwd_d128(const u16* Q, const u16* K, const u16* V, u16* O, int n,
                                                float scale_log2, int causal) {
  fa2_body<128>(Q, K, V, O, n, scale_log2, causal);
}
