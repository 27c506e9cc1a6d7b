// Microbenchmark (development evidence, not a scored case): per-SM-sub-partition throughput of
// FlashAttention-2's inner-loop instructions on Hopper — mma.sync.m16n8k16 bf16→fp32,
// ldmatrix.x4, MUFU ex2 — alone and interleaved in one warp's instruction stream, as FA2's
// main loop issues them. One CTA per SM, W warps; cycles from clock64() on the SM.
// Build: nvcc -O3 -gencode=arch=compute_90,code=sm_90 mma_sync_bench.cu -o bench
#include <cstdio>
#include <cuda_runtime.h>
#define ITERS 4096
template <int NMMA, int NLDM, int NEX2>
__global__ void k(unsigned long long *cyc, float *sink) {
  __shared__ __align__(128) unsigned char smem[32 * 16 * 9];
  unsigned a0 = threadIdx.x, a1 = a0 * 3, a2 = a0 * 5, a3 = a0 * 7, b0 = a0 * 11, b1 = a0 * 13;
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
  float e[8];
#pragma unroll
  for (int i = 0; i < 8; i++) e[i] = threadIdx.x * 1e-3f + i;
  unsigned l[4] = {0, 0, 0, 0}, t[4];
  unsigned saddr = (unsigned)__cvta_generic_to_shared(smem) + (threadIdx.x % 32) * 16 + ((threadIdx.x / 32) % 8) * 512;
  __syncthreads();
  unsigned long long t0 = clock64();
  for (int it = 0; it < ITERS; it++) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
      if (i < NMMA)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(acc[i][0]), "+f"(acc[i][1]), "+f"(acc[i][2]), "+f"(acc[i][3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
      if (i < NLDM)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(t[0]), "=r"(t[1]), "=r"(t[2]), "=r"(t[3]) : "r"(saddr + (i % 4) * 128));
      if (i < NLDM) { l[0] ^= t[0] ^ t[1]; l[1] ^= t[2] ^ t[3]; }
      if (i < NEX2) asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+f"(e[i]));
    }
  }
  __syncthreads();
  unsigned long long t1 = clock64();
  if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
  float s = 0;
#pragma unroll
  for (int i = 0; i < 8; i++) s += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3] + e[i];
  sink[blockIdx.x * blockDim.x + threadIdx.x] = s + l[0] + l[1] + l[2] + l[3];
}
template <int NMMA, int NLDM, int NEX2>
void run(const char *name, int warps, int sms) {
  unsigned long long *cyc; float *sink; cudaEvent_t e0, e1;
  cudaMalloc(&cyc, sms * 8); cudaMalloc(&sink, sms * warps * 32 * 4);
  cudaEventCreate(&e0); cudaEventCreate(&e1);
  k<NMMA, NLDM, NEX2><<<sms, warps * 32>>>(cyc, sink);
  cudaEventRecord(e0);
  k<NMMA, NLDM, NEX2><<<sms, warps * 32>>>(cyc, sink);
  cudaEventRecord(e1); cudaEventSynchronize(e1);
  float ms; cudaEventElapsedTime(&ms, e0, e1);
  unsigned long long h[1024]; cudaMemcpy(h, cyc, sms * 8, cudaMemcpyDeviceToHost);
  double c = 0; for (int i = 0; i < sms; i++) c += h[i]; c /= sms;
  double per_it = c / ITERS / (warps / 4.0);  // cycles per iteration per warp on one sub-partition
  printf("%-10s warps=%2d mma=%d ldm=%d ex2=%d  cyc/iter/warp/SMSP=%7.2f  cyc/mma=%6.2f  clock=%5.0f MHz  mma TFLOP/s=%6.1f\n",
         name, warps, NMMA, NLDM, NEX2, per_it, NMMA ? per_it / NMMA : 0.0, c / (ms * 1e3),
         NMMA ? 4096.0 * NMMA * ITERS * warps * (double)sms / (ms * 1e-3) / 1e12 : 0.0);
  cudaFree(cyc); cudaFree(sink);
}
int main() {
  int sms = 132;
  for (int w : {4, 8, 16}) {
    run<8, 0, 0>("mma", w, sms);
    run<0, 8, 0>("ldm", w, sms);
    run<0, 0, 8>("ex2", w, sms);
    run<8, 3, 0>("mma+ldm", w, sms);
    run<8, 6, 0>("mma+ldm6", w, sms);   // FA2 d128: 80 ldmatrix.x4 per 256 mma
    run<8, 0, 2>("mma+ex2", w, sms);   // FA2 d128: 64 ex2 per 256 mma
    run<8, 3, 2>("mma+ldm+ex2", w, sms);
    run<8, 0, 4>("mma+ex2x4", w, sms); // FA2 d64: 128 ex2 per 256 mma
  }
  return 0;
}
