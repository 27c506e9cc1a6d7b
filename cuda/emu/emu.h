// CPU emulation of the small CUDA subset used by cuda/kernels/*.cu.
//
// Every CUDA thread of a CTA is a fiber (ucontext) with its own stack, all on one
// OS thread; CTAs run one after another. A fiber runs until it waits at a barrier
// (__syncthreads, or the warp barrier of a warp-collective operation) or ends; a
// barrier's last arrival makes its waiters runnable again, in arrival order. So a
// run is deterministic, a thread reads shared memory that lower-numbered threads
// wrote before the barrier it missed rather than racing with them, and a barrier
// that can never complete is reported at once ("EMU: deadlock") instead of hanging.
// Warp-collective PTX (ldmatrix, mma.sync, shfl) exchanges operands through a
// per-warp scratch area between two warp barriers. Fragment layouts follow the PTX
// ISA tables (written independently of the kernels that use them): mma.m16n8k16
// A/B/C fragments and the ldmatrix.m8n8 (optionally .trans) distribution.
// cp.async copies are queued per thread and only land at cp.async.wait_group, so a
// missing wait reads stale shared memory. Build with -fsanitize=address to catch
// out-of-bounds global/shared accesses (the fiber switches are annotated for it).
// Not part of the Rust build: cuda/tests/emu.rs compiles emu_test.cpp with g++ and
// runs it in `cargo test`.
#pragma once
#include <sys/mman.h>
#include <ucontext.h>

#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

typedef uint32_t u32;
typedef uint16_t u16;
typedef unsigned long long u64;
struct alignas(16) uint4 { u32 x, y, z, w; };
struct alignas(8) uint2 { u32 x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct dim3e { unsigned x = 1, y = 1, z = 1; };

namespace emu {
struct Pending { void* dst; const void* src; };

// One CUDA thread.
struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;  // lowest address (a guard page), then the stack proper
  dim3e tidx;
  int lane = 0, warp = 0;
  bool done = false;
  std::vector<Pending> cur_group;               // cp.async since the last commit
  std::vector<std::vector<Pending>> groups;     // committed, not yet waited for
  void* fake_stack = nullptr;                   // AddressSanitizer's, across switches
};

inline Fiber* cur = nullptr;        // the fiber running
inline ucontext_t sched_ctx;        // the launch's scheduler
inline std::deque<Fiber*> runnable;
inline const void* sched_stack = nullptr;  // the scheduler's stack, for AddressSanitizer
inline size_t sched_stack_size = 0;
// Stack per fiber: the kernels need under 16 KiB with AddressSanitizer (8 KiB overflow);
// an overflow hits the guard page below and faults, never silently. A larger stack costs
// time: AddressSanitizer clears the shadow of the whole stack at every switch.
constexpr size_t kGuard = 4096, kStack = 64 * 1024;

// Back to the scheduler; returns when the scheduler resumes this fiber. `last`: the fiber
// has ended and never resumes.
inline void to_scheduler(bool last) {
#ifdef EMU_ASAN
  __sanitizer_start_switch_fiber(last ? nullptr : &cur->fake_stack, sched_stack, sched_stack_size);
#endif
  if (last) {
    setcontext(&sched_ctx);
  }
  swapcontext(&cur->ctx, &sched_ctx);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(cur->fake_stack, nullptr, nullptr);
#endif
}

// Runs fiber `f` until it waits or ends.
inline void resume(Fiber* f) {
  cur = f;
#ifdef EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack + kGuard, kStack);
#endif
  swapcontext(&sched_ctx, &f->ctx);
#ifdef EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  cur = nullptr;
}

struct Barrier {
  unsigned expected, arrived = 0;
  std::vector<Fiber*> waiting;
  explicit Barrier(unsigned n) : expected(n) {}
  // The last arrival wakes the others and goes on; the others wait to be resumed.
  void arrive_and_wait() {
    if (++arrived == expected) {
      arrived = 0;
      for (Fiber* f : waiting) runnable.push_back(f);
      waiting.clear();
      return;
    }
    waiting.push_back(cur);
    to_scheduler(false);
  }
};

struct Warp {
  Barrier bar{32};
  u32 w[32][8];
  const void* p[32];
  float f[32];
};
inline dim3e bidx, bdim, gdim;
inline Barrier* cta_bar = nullptr;
inline Warp* warps = nullptr;
inline unsigned char* dyn_smem = nullptr;
}  // namespace emu

#define threadIdx (emu::cur->tidx)
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
  emu::Warp& W = emu::warps[emu::cur->warp];
  const int l = emu::cur->lane;
  W.f[l] = v;
  W.bar.arrive_and_wait();
  float r = W.f[l ^ m];
  W.bar.arrive_and_wait();
  return r;
}

static inline void cp_async16(void* smem, const void* gmem) {
  emu_check_align(smem, "cp.async dst");
  emu_check_align(gmem, "cp.async src");
  emu::cur->cur_group.push_back({smem, gmem});
}
static inline void cp_async_commit() {
  emu::cur->groups.push_back(std::move(emu::cur->cur_group));
  emu::cur->cur_group.clear();
}
template <int N>
static inline void cp_async_wait() {
  auto& groups = emu::cur->groups;
  while ((int)groups.size() > N) {
    for (auto& c : groups.front()) memcpy(c.dst, c.src, 16);
    groups.erase(groups.begin());
  }
}

static inline void emu_ldsm(u32* r, const void* p, bool trans) {
  emu::Warp& W = emu::warps[emu::cur->warp];
  const int l = emu::cur->lane;
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
  emu::Warp& W = emu::warps[emu::cur->warp];
  const int l = emu::cur->lane;
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

// The body of the kernel being launched, as every fiber calls it.
inline void (*body_fn)(void*) = nullptr;
inline void* body_arg = nullptr;

inline void fiber_entry() {
#ifdef EMU_ASAN
  // The stack switched from is the scheduler's.
  __sanitizer_finish_switch_fiber(nullptr, &sched_stack, &sched_stack_size);
#endif
  body_fn(body_arg);
  cp_async_wait<0>();
  cur->done = true;
  to_scheduler(true);
}

// Runs body() as every thread of every CTA of the grid (1-D blocks), CTAs one after another
// in x, y, z order, the CTA's threads as fibers (see the top of this file). Shared memory
// is poisoned (all bits set: bf16/f32 NaN) before every CTA.
template <class F>
void launch(dim3e grid, unsigned threads, size_t dyn_bytes, const char* name, F&& body) {
  assert(threads % 32 == 0 && threads <= 1024);
  launched.push_back(name);
  gdim = grid;
  bdim = dim3e{threads, 1, 1};
  const size_t dyn_alloc = dyn_bytes ? dyn_bytes : 16;
  unsigned char* smem = (unsigned char*)aligned_alloc(128, (dyn_alloc + 127) / 128 * 128);
  dyn_smem = smem;
  Barrier bar(threads);
  cta_bar = &bar;
  std::unique_ptr<Warp[]> ws(new Warp[threads / 32]);
  warps = ws.get();
  body_fn = [](void* p) { (*static_cast<std::remove_reference_t<F>*>(p))(); };
  body_arg = (void*)&body;
  // Stacks with a guard page below each: an overflow faults instead of corrupting.
  const size_t per = kGuard + kStack;
  char* stacks = (char*)mmap(nullptr, per * threads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stacks == MAP_FAILED) {
    perror("EMU: mmap of the fiber stacks");
    abort();
  }
  std::vector<Fiber> fibers(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = fibers[t];
    f.stack = stacks + per * t;
    mprotect(f.stack, kGuard, PROT_NONE);
    f.tidx = dim3e{t, 0, 0};
    f.lane = (int)(t % 32);
    f.warp = (int)(t / 32);
  }
  const unsigned long long ctas = (unsigned long long)grid.x * grid.y * grid.z;
  for (unsigned long long c = 0; c < ctas; ++c) {
    bidx = dim3e{(unsigned)(c % grid.x), (unsigned)(c / grid.x % grid.y), (unsigned)(c / grid.x / grid.y)};
    memset(smem, 0xff, dyn_alloc);  // poison: bf16 NaN / f32 NaN
    for (Fiber& f : fibers) {
      f.done = false;
      f.groups.clear();
      f.cur_group.clear();
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack + kGuard;
      f.ctx.uc_stack.ss_size = kStack;
      f.ctx.uc_link = nullptr;
      makecontext(&f.ctx, fiber_entry, 0);
      runnable.push_back(&f);
    }
    while (!runnable.empty()) {
      Fiber* f = runnable.front();
      runnable.pop_front();
      resume(f);
    }
    for (const Fiber& f : fibers) {
      if (!f.done) {
        fprintf(stderr,
                "EMU: deadlock in %s, CTA (%u, %u, %u): thread %u waits at a barrier that not "
                "every thread of the CTA reaches\n",
                name, bidx.x, bidx.y, bidx.z, f.tidx.x);
        abort();
      }
    }
  }
  munmap(stacks, per * threads);
  free(smem);
}

// A grid (parentheses keep its commas inside one macro argument).
inline dim3e grid(unsigned x, unsigned y = 1, unsigned z = 1) { return dim3e{x, y, z}; }
}  // namespace emu

// Launches `kernel(args...)` on `grid` (an emu::grid(...)) and records its name: the kernels
// a test reports are the functions it called, not names written by hand.
#define EMU_LAUNCH(grid, threads, smem, kernel, ...) \
  emu::launch(grid, threads, smem, #kernel, [&] { kernel(__VA_ARGS__); })
