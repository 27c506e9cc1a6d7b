// CPU emulation of the small CUDA subset used by cuda/kernels/*.cu.
//
// One OS thread per CUDA thread, CTAs run one after another; __syncthreads is
// a std::barrier over the CTA; warp-collective PTX (ldmatrix, mma.sync, shfl)
// exchanges operands through a per-warp scratch area between two warp
// barriers. Fragment layouts follow the PTX ISA tables (written independently
// of the kernels that use them): mma.m16n8k16 A/B/C fragments and the
// ldmatrix.m8n8 (optionally .trans) distribution. cp.async copies are queued
// per thread and only land at cp.async.wait_group, so a missing wait reads
// stale shared memory. Build with -fsanitize=address to catch out-of-bounds
// global/shared accesses. Not part of the Rust build: cuda/tests/emu.rs compiles
// emu_test.cpp with g++ and runs it in `cargo test`.
#pragma once
#include <atomic>
#include <barrier>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

typedef uint32_t u32;
typedef uint16_t u16;
typedef unsigned long long u64;
struct alignas(16) uint4 { u32 x, y, z, w; };
struct alignas(8) uint2 { u32 x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct dim3e { unsigned x = 1, y = 1, z = 1; };

namespace emu {
struct Warp {
  std::barrier<> bar{32};
  u32 w[32][8];
  const void* p[32];
  float f[32];
};
struct Pending { void* dst; const void* src; };
inline thread_local dim3e tidx, bidx;
inline dim3e bdim, gdim;
inline std::barrier<>* cta_bar = nullptr;
inline Warp* warps = nullptr;
inline thread_local int lane_id = 0, warp_id = 0;
inline unsigned char* dyn_smem = nullptr;
inline thread_local std::vector<Pending> cur_group;
inline thread_local std::vector<std::vector<Pending>> groups;
}  // namespace emu

#define threadIdx emu::tidx
#define blockIdx emu::bidx
#define blockDim emu::bdim
#define gridDim emu::gdim
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define __launch_bounds__(n)
#define DEVI static inline
#define KERNEL extern "C"
#define DYN_SMEM(name) unsigned char* name = emu::dyn_smem

static inline float f_as(u32 u) { float f; memcpy(&f, &u, 4); return f; }
static inline u32 u_as(float f) { u32 u; memcpy(&u, &f, 4); return u; }
static inline void cta_sync() { emu::cta_bar->arrive_and_wait(); }
static inline void atomic_inc_u64(u64* p) { __atomic_fetch_add(p, 1ULL, __ATOMIC_RELAXED); }
static inline u32 ld_cg_u32(const u32* p) { return *p; }

static inline void emu_check_align(const void* p, const char* what) {
  if (((uintptr_t)p) % 16 != 0) {
    fprintf(stderr, "EMU: misaligned %s address %p\n", what, p);
    abort();
  }
}

static inline float shfl_xor(float v, int m) {
  emu::Warp& W = emu::warps[emu::warp_id];
  const int l = emu::lane_id;
  W.f[l] = v;
  W.bar.arrive_and_wait();
  float r = W.f[l ^ m];
  W.bar.arrive_and_wait();
  return r;
}

static inline void cp_async16(void* smem, const void* gmem) {
  emu_check_align(smem, "cp.async dst");
  emu_check_align(gmem, "cp.async src");
  emu::cur_group.push_back({smem, gmem});
}
static inline void cp_async_commit() {
  emu::groups.push_back(std::move(emu::cur_group));
  emu::cur_group.clear();
}
template <int N>
static inline void cp_async_wait() {
  while ((int)emu::groups.size() > N) {
    for (auto& c : emu::groups.front()) memcpy(c.dst, c.src, 16);
    emu::groups.erase(emu::groups.begin());
  }
}

static inline void emu_ldsm(u32* r, const void* p, bool trans) {
  emu::Warp& W = emu::warps[emu::warp_id];
  const int l = emu::lane_id;
  emu_check_align(p, "ldmatrix row");
  W.p[l] = p;
  W.bar.arrive_and_wait();
  for (int i = 0; i < 4; ++i) {
    u32 lo, hi;
    if (!trans) {  // lane l: row l/4, columns 2*(l%4), 2*(l%4)+1
      const u16* row = (const u16*)W.p[i * 8 + l / 4];
      lo = row[2 * (l % 4)];
      hi = row[2 * (l % 4) + 1];
    } else {  // lane l: rows 2*(l%4), 2*(l%4)+1 of column l/4
      const u16* r0 = (const u16*)W.p[i * 8 + 2 * (l % 4)];
      const u16* r1 = (const u16*)W.p[i * 8 + 2 * (l % 4) + 1];
      lo = r0[l / 4];
      hi = r1[l / 4];
    }
    r[i] = lo | (hi << 16);
  }
  W.bar.arrive_and_wait();
}
static inline void ldsm_x4(u32* r, const void* p) { emu_ldsm(r, p, false); }
static inline void ldsm_x4_t(u32* r, const void* p) { emu_ldsm(r, p, true); }

static inline float emu_bf(u32 h) { return f_as((h & 0xffffu) << 16); }
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, PTX ISA fragment tables.
static inline void mma_bf16(float* d, const u32* a, const u32* b) {
  emu::Warp& W = emu::warps[emu::warp_id];
  const int l = emu::lane_id;
  for (int i = 0; i < 4; ++i) W.w[l][i] = a[i];
  W.w[l][4] = b[0];
  W.w[l][5] = b[1];
  W.bar.arrive_and_wait();
  float A[16][16], B[16][8];
  for (int L = 0; L < 32; ++L) {
    const int g = L >> 2, t = L & 3;
    const u32* w = W.w[L];
    A[g][2 * t] = emu_bf(w[0]);          A[g][2 * t + 1] = emu_bf(w[0] >> 16);
    A[g + 8][2 * t] = emu_bf(w[1]);      A[g + 8][2 * t + 1] = emu_bf(w[1] >> 16);
    A[g][2 * t + 8] = emu_bf(w[2]);      A[g][2 * t + 9] = emu_bf(w[2] >> 16);
    A[g + 8][2 * t + 8] = emu_bf(w[3]);  A[g + 8][2 * t + 9] = emu_bf(w[3] >> 16);
    B[2 * t][g] = emu_bf(w[4]);          B[2 * t + 1][g] = emu_bf(w[4] >> 16);
    B[2 * t + 8][g] = emu_bf(w[5]);      B[2 * t + 9][g] = emu_bf(w[5] >> 16);
  }
  W.bar.arrive_and_wait();
  const int g = l >> 2, t = l & 3;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int e = 0; e < 4; ++e) {
    double s = 0.0;
    for (int k = 0; k < 16; ++k) s += (double)A[rows[e]][k] * (double)B[k][cols[e]];
    d[e] = (float)((double)d[e] + s);
  }
}

namespace emu {
// Names of the kernels launched since the test last reported (see EMU_LAUNCH).
inline std::vector<const char*> launched;

// Runs body() as every thread of every CTA of the grid (1-D blocks), CTAs one after another
// in x, y, z order. One OS thread per CUDA thread, created once per launch and reused for every
// CTA: between two CTAs all threads meet twice (the previous CTA is done everywhere before
// thread 0 poisons the dynamic shared memory again, and that is done before any thread starts
// the next CTA), so a CTA sees only its own shared memory and never a thread of another.
template <class F>
void launch(dim3e grid, unsigned threads, size_t dyn_bytes, const char* name, F&& body) {
  assert(threads % 32 == 0 && threads <= 1024);
  launched.push_back(name);
  gdim = grid;
  bdim = dim3e{threads, 1, 1};
  const size_t dyn_alloc = dyn_bytes ? dyn_bytes : 16;
  unsigned char* smem = (unsigned char*)aligned_alloc(128, (dyn_alloc + 127) / 128 * 128);
  dyn_smem = smem;
  std::barrier<> bar(threads);
  cta_bar = &bar;
  std::barrier<> between(threads);
  std::unique_ptr<Warp[]> ws(new Warp[threads / 32]);
  warps = ws.get();
  const unsigned long long ctas = (unsigned long long)grid.x * grid.y * grid.z;
  std::vector<std::thread> th;
  th.reserve(threads);
  for (unsigned t = 0; t < threads; ++t)
    th.emplace_back([&, t] {
      tidx = dim3e{t, 0, 0};
      lane_id = (int)(t % 32);
      warp_id = (int)(t / 32);
      for (unsigned long long c = 0; c < ctas; ++c) {
        if (t == 0) memset(smem, 0xff, dyn_alloc);  // poison: bf16 NaN / f32 NaN
        between.arrive_and_wait();
        bidx = dim3e{(unsigned)(c % grid.x), (unsigned)(c / grid.x % grid.y), (unsigned)(c / grid.x / grid.y)};
        groups.clear();
        cur_group.clear();
        body();
        cp_async_wait<0>();
        between.arrive_and_wait();
      }
    });
  for (auto& h : th) h.join();
  free(smem);
}

// A grid (parentheses keep its commas inside one macro argument).
inline dim3e grid(unsigned x, unsigned y = 1, unsigned z = 1) { return dim3e{x, y, z}; }
}  // namespace emu

// Launches `kernel(args...)` on `grid` (an emu::grid(...)) and records its name: the kernels
// a test reports are the functions it called, not names written by hand.
#define EMU_LAUNCH(grid, threads, smem, kernel, ...) \
  emu::launch(grid, threads, smem, #kernel, [&] { kernel(__VA_ARGS__); })
