// Microbenchmark (development evidence, no score): FlashAttention-2's Q·Kᵀ inner loop shape on
// Hopper. Per k-slice a warp issues NLDM ldmatrix.x4 for slice i+1 (register double buffer, as
// flash::gemm) and NMMA mma.sync.m16n8k16 for slice i that consume the fragments loaded one
// slice earlier. W warps per CTA, one CTA per SM; cycles from clock64().
#include <cstdio>
#include <cuda_runtime.h>
#define SL 2048
template <int NLDM, int NMMA>
__global__ void k(unsigned long long *cyc, float *sink) {
  extern __shared__ __align__(128) unsigned char sm[];
  int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  unsigned base = (unsigned)__cvta_generic_to_shared(sm) + lane * 16;
  unsigned f[2][8][4];
  float acc[16][4];
#pragma unroll
  for (int i = 0; i < 16; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
#pragma unroll
  for (int j = 0; j < 8; j++) f[0][j][0] = f[0][j][1] = f[0][j][2] = f[0][j][3] = lane;
  __syncthreads();
  unsigned long long t0 = clock64();
  for (int s = 0; s < SL; s += 2) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
#pragma unroll
      for (int j = 0; j < NLDM; j++)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(f[h ^ 1][j][0]), "=r"(f[h ^ 1][j][1]), "=r"(f[h ^ 1][j][2]), "=r"(f[h ^ 1][j][3])
                     : "r"(base + ((j + w * 3 + s) % 64) * 512));
#pragma unroll
      for (int m = 0; m < NMMA; m++) {
        unsigned *a = f[h][m % 2], *b = f[h][NLDM > 2 ? 2 + (m / 2) % (NLDM - 2) : m % 2];
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(acc[m][0]), "+f"(acc[m][1]), "+f"(acc[m][2]), "+f"(acc[m][3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[(m & 1) * 2]), "r"(b[(m & 1) * 2 + 1]));
      }
    }
  }
  __syncthreads();
  unsigned long long t1 = clock64();
  if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
  float z = 0;
#pragma unroll
  for (int i = 0; i < 16; i++) z += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3];
  sink[blockIdx.x * blockDim.x + threadIdx.x] = z;
}
template <int NLDM, int NMMA>
void run(int warps) {
  unsigned long long *cyc, h[132]; float *sink;
  cudaMalloc(&cyc, 132 * 8); cudaMalloc(&sink, 132 * warps * 32 * 4);
  cudaFuncSetAttribute(k<NLDM, NMMA>, cudaFuncAttributeMaxDynamicSharedMemorySize, 65536);
  for (int r = 0; r < 2; r++) k<NLDM, NMMA><<<132, warps * 32, 65536>>>(cyc, sink);
  cudaMemcpy(h, cyc, 132 * 8, cudaMemcpyDeviceToHost);
  double c = 0; for (int i = 0; i < 132; i++) c += h[i]; c /= 132;
  double per = c / SL / (warps / 4.0);  // cycles per slice per warp on one sub-partition
  printf("ldm=%d mma=%2d warps=%2d cyc/slice/warp/SMSP=%7.1f  mma-only=%5.0f smem-only=%5.0f\n", NLDM, NMMA, warps, per,
         6.0 * NMMA, NLDM * 512.0 / 32.0);
}
int main() {
  for (int w : {4, 8, 16}) { run<6, 16>(w); run<4, 16>(w); run<0 + 2, 16>(w); run<8, 16>(w); }
  return 0;
}
