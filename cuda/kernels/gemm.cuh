// Tiled tensor-core GEMM tile: one CTA of 256 threads (8 warps, 2 x 4) computes
// a BM x BN tile of C = alpha * A * op(B), fp32 accumulation in registers,
// mma.sync.m16n8k16 bf16, ldmatrix fragment loads, BK = 32, a STAGES-deep
// cp.async pipeline in dynamic shared memory (one barrier per k-step; rows
// padded by 16 bytes: conflict-free ldmatrix). Shared memory: see
// gemm_smem_bytes (the host's launch table must match).
//   A: [M, K] row-major (lda)
//   B_NT == false: B is [K, N] row-major (ldb)      -> C = A * B
//   B_NT == true : B is [N, K] row-major (ldb)      -> C = A * B^T
//   OUT_F32: C is fp32 (ldc), else bf16 (ldc)
// Preconditions (checked on the host): M % BM == 0, N % BN == 0, K % 32 == 0,
// lda/ldb/ldc multiples of 8, base pointers 16-byte aligned.
#define GEMM_BK 32
#define GEMM_THREADS 256
#define GEMM_STAGES 4

template <int BM, int BN, bool B_NT, int STAGES>
DEVI constexpr int gemm_smem_bytes() {
  return STAGES * (BM * (GEMM_BK + 8) + (B_NT ? BN * (GEMM_BK + 8) : GEMM_BK * (BN + 8))) * 2;
}

template <int BM, int BN, bool B_NT, bool OUT_F32, int STAGES>
DEVI void gemm_tile(const u16* __restrict__ A, const u16* __restrict__ B, void* __restrict__ C,
                    int K, int lda, int ldb, int ldc, float alpha, int m0, int n0, u16* smem) {
  constexpr int BK = GEMM_BK;
  constexpr int AS = BK + 8;                      // A smem row stride (elements)
  constexpr int B_ROWS = B_NT ? BN : BK;
  constexpr int BS = B_NT ? (BK + 8) : (BN + 8);  // B smem row stride
  constexpr int WM = BM / 2, WN = BN / 4;         // warp tile
  constexpr int MT = WM / 16, NT = WN / 8;        // mma tiles per warp
  static_assert(NT % 2 == 0, "B fragments are loaded for pairs of n8 tiles");
  static_assert(STAGES >= 2, "pipeline depth");

  u16* As = smem;                        // [STAGES][BM * AS]
  u16* Bs = smem + STAGES * BM * AS;     // [STAGES][B_ROWS * BS]

  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  static_assert((BM * BK / 8) % GEMM_THREADS == 0 && (BN * BK / 8) % GEMM_THREADS == 0, "tile/threads");
  auto load_stage = [&](int stage, int k0) {
#pragma unroll
    for (int i = 0; i < BM * BK / 8 / GEMM_THREADS; ++i) {
      int c = tid + i * GEMM_THREADS;
      int r = c / (BK / 8), cc = (c % (BK / 8)) * 8;
      cp_async16(As + stage * (BM * AS) + r * AS + cc, A + (long long)(m0 + r) * lda + k0 + cc);
    }
#pragma unroll
    for (int i = 0; i < BN * BK / 8 / GEMM_THREADS; ++i) {
      int c = tid + i * GEMM_THREADS;
      if (!B_NT) {
        int r = c / (BN / 8), cc = (c % (BN / 8)) * 8;
        cp_async16(Bs + stage * (B_ROWS * BS) + r * BS + cc, B + (long long)(k0 + r) * ldb + n0 + cc);
      } else {
        int r = c / (BK / 8), cc = (c % (BK / 8)) * 8;
        cp_async16(Bs + stage * (B_ROWS * BS) + r * BS + cc, B + (long long)(n0 + r) * ldb + k0 + cc);
      }
    }
  };

  const int KT = K / BK;
  // Prologue: tiles 0..STAGES-2 in flight (one commit group per tile, empty if past K).
#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (st < KT) load_stage(st, st * BK);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<STAGES - 2>();  // the group of tile kt has landed
    cta_sync();                   // ... for every thread; and all are done with tile kt-1
    {
      const int nk = kt + STAGES - 1;  // refill the slot that held tile kt-1
      if (nk < KT) load_stage(nk % STAGES, nk * BK);
      cp_async_commit();
    }
    const u16* as = As + (kt % STAGES) * (BM * AS);
    const u16* bs = Bs + (kt % STAGES) * (B_ROWS * BS);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      u32 af[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        int row = wm * WM + mt * 16 + (lane & 15);
        int col = kk + (lane >> 4) * 8;
        ldsm_x4(af[mt], as + row * AS + col);
      }
      u32 bfr[NT][2];
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        u32 r[4];
        if (!B_NT) {
          int krow = kk + (lane & 15);
          int ncol = wn * WN + np * 16 + (lane >> 4) * 8;
          ldsm_x4_t(r, bs + krow * BS + ncol);
        } else {
          int nrow = wn * WN + np * 16 + (lane & 7) + (lane >> 4) * 8;
          int kcol = kk + ((lane >> 3) & 1) * 8;
          ldsm_x4(r, bs + nrow * BS + kcol);
        }
        bfr[2 * np][0] = r[0];
        bfr[2 * np][1] = r[1];
        bfr[2 * np + 1][0] = r[2];
        bfr[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma_bf16(acc[mt][nt], af[mt], bfr[nt]);
    }
  }

  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int row = m0 + wm * WM + mt * 16 + g + h * 8;
        int col = n0 + wn * WN + nt * 8 + 2 * t4;
        float v0 = acc[mt][nt][2 * h] * alpha, v1 = acc[mt][nt][2 * h + 1] * alpha;
        if (OUT_F32) {
          float* c = (float*)C + (long long)row * ldc + col;
          c[0] = v0;
          c[1] = v1;
        } else {
          *(u32*)((u16*)C + (long long)row * ldc + col) = pack_bf16(v0, v1);
        }
      }
}
