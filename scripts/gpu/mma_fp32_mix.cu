// Microbenchmark (development evidence, no score): do independent FP32 FFMAs issue alongside
// mma.sync.m16n8k16 on Hopper? Per iteration a warp issues NMMA MMAs and NF FFMAs on 8
// independent chains. One CTA per SM, W warps; cycles from clock64().
#include <cstdio>
#include <cuda_runtime.h>
#define IT 4096
template <int NMMA, int NF>
__global__ void k(unsigned long long *cyc, float *sink) {
  unsigned a = threadIdx.x, b = a * 3;
  float acc[8][4], x[8];
#pragma unroll
  for (int i = 0; i < 8; i++) { acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f; x[i] = a * 1e-3f + i; }
  __syncthreads();
  unsigned long long t0 = clock64();
  for (int it = 0; it < IT; it++) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
      if (i < NMMA)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%4,%5,%5}, {%4,%5}, {%0,%1,%2,%3};"
                     : "+f"(acc[i][0]), "+f"(acc[i][1]), "+f"(acc[i][2]), "+f"(acc[i][3]) : "r"(a), "r"(b));
#pragma unroll
      for (int j = 0; j < NF / 8; j++) asm volatile("fma.rn.f32 %0, %0, 0f3F7FBE77, 0f3A83126F;" : "+f"(x[(i + j) % 8]));
    }
  }
  __syncthreads();
  unsigned long long t1 = clock64();
  if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
  float z = 0;
#pragma unroll
  for (int i = 0; i < 8; i++) z += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3] + x[i];
  sink[blockIdx.x * blockDim.x + threadIdx.x] = z;
}
template <int NMMA, int NF>
void run(int w) {
  unsigned long long *cyc, h[132]; float *sink;
  cudaMalloc(&cyc, 132 * 8); cudaMalloc(&sink, 132 * w * 128);
  for (int r = 0; r < 2; r++) k<NMMA, NF><<<132, w * 32>>>(cyc, sink);
  cudaMemcpy(h, cyc, 132 * 8, cudaMemcpyDeviceToHost);
  double c = 0; for (int i = 0; i < 132; i++) c += h[i]; c /= 132;
  printf("mma=%d ffma=%2d warps=%2d cyc/iter/warp/SMSP=%6.1f (mma alone %d, ffma alone %d)\n", NMMA, NF, w, c / IT / (w / 4.0), 6 * NMMA, NF);
}
int main() {
  for (int w : {4, 8}) { run<8, 0>(w); run<0, 32>(w); run<8, 8>(w); run<8, 16>(w); run<8, 24>(w); run<8, 32>(w); run<8, 48>(w); }
}
