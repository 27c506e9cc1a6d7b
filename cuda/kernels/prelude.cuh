// cascade-cuda — device prelude shared by every kernel family.
//
// Compiled by NVRTC for sm_90 with no headers: bf16 values travel as raw
// `unsigned short` bit patterns and every tensor-core / async-copy operation is
// inline PTX. When CASCADE_EMU is defined (CPU emulation harness in
// cuda/emu/), the same names come from emu.h instead, so the kernel bodies
// below this prelude are compiled unchanged by g++ and executed on the CPU.
#ifndef CASCADE_EMU
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;
#define DEVI __device__ __forceinline__
#define KERNEL extern "C" __global__
#define DYN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]

// 32-bit shared-state-space address of a generic pointer to shared memory.
DEVI u32 smem_u32(const void* p) {
  u32 r;
  asm volatile("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\n" : "=r"(r) : "l"(p));
  return r;
}
// 16-byte global->shared async copy (L2 only, bypasses L1).
DEVI void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(smem)), "l"(gmem) : "memory");
}
DEVI void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
DEVI void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i.
DEVI void ldsm_x4(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
DEVI void ldsm_x4_t(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
// d(16x8 f32) += a(16x16 bf16, row) * b(16x8 bf16, col)
DEVI void mma_bf16(float* d, const u32* a, const u32* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
DEVI float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
DEVI void cta_sync() { __syncthreads(); }
DEVI float f_as(u32 u) { return __uint_as_float(u); }
DEVI u32 u_as(float f) { return __float_as_uint(f); }
DEVI void atomic_inc_u64(u64* p) { atomicAdd(p, 1ULL); }
// Global load cached in L2 only (ld.global.cg): L1 never serves it.
DEVI u32 ld_cg_u32(const u32* p) {
  u32 r;
  asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(r) : "l"(p));
  return r;
}
#endif  // !CASCADE_EMU

#define NEG_INF (f_as(0xff800000u))

DEVI int imin(int a, int b) { return a < b ? a : b; }
DEVI float bf2f(u16 h) { return f_as(((u32)h) << 16); }
// Round-to-nearest-even f32 -> bf16 (NaN -> canonical quiet NaN).
DEVI u16 f2bf(float f) {
  u32 u = u_as(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}
// Low half = first (lower-index) element, as mma/ldmatrix fragments expect.
DEVI u32 pack_bf16(float lo, float hi) { return (u32)f2bf(lo) | ((u32)f2bf(hi) << 16); }
