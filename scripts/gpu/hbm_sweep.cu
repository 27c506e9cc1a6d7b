// HBM bandwidth of the lent GPU against access size, stride and the number of active SMs
// (issue 11, item 6: evidence for the DRAM model's HBM3e preset and the GPU model's memory
// behaviour). Our own kernels, no library: each thread streams loads of T (4, 8 or 16 bytes)
// over a 4 GiB buffer, touching one T in every `stride`; the CTAs are persistent (one per SM
// when restricting the SMs, forced by shared memory), so `sms` CTAs run on `sms` SMs.
// A write kernel stores T the same way. Cold data: the buffer is 4 GiB, 70x the L2.
// Times: cudaEvent around the kernel, median of 9 runs after one warm-up.
// Build: nvcc -O3 -gencode=arch=compute_90,code=sm_90 hbm_sweep.cu -o hbm_sweep
// Run:   ./hbm_sweep > hbm_sweep.csv
#include <algorithm>
#include <cstdio>
#include <cuda_runtime.h>
#include <vector>

#define CHECK(x)                                                                         \
  do {                                                                                   \
    cudaError_t e = (x);                                                                 \
    if (e != cudaSuccess) {                                                              \
      fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e));          \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

__device__ __forceinline__ unsigned fold(unsigned v) { return v; }
__device__ __forceinline__ unsigned fold(uint2 v) { return v.x ^ v.y; }
__device__ __forceinline__ unsigned fold(uint4 v) { return v.x ^ v.y ^ v.z ^ v.w; }

template <typename T>
__global__ void rd(const T *__restrict__ p, size_t n, size_t stride, unsigned *sink) {
  unsigned acc = 0;
  size_t step = (size_t)blockDim.x * gridDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i * stride < n; i += step)
    acc ^= fold(__ldcg(p + i * stride));
  if (acc == 0x9e3779b9u) *sink = acc;
}

template <typename T>
__global__ void wr(T *__restrict__ p, size_t n, size_t stride) {
  size_t step = (size_t)blockDim.x * gridDim.x;
  T v;
  memset(&v, 0x5a, sizeof(T));
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i * stride < n; i += step)
    __stcg(p + i * stride, v);
}

template <typename T>
static float run(bool write, void *buf, size_t bytes, size_t stride, int ctas, int threads,
                 size_t smem, unsigned *sink) {
  size_t n = bytes / sizeof(T);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int r = 0; r < 10; r++) {
    cudaEventRecord(a);
    if (write)
      wr<T><<<ctas, threads, smem>>>((T *)buf, n, stride);
    else
      rd<T><<<ctas, threads, smem>>>((const T *)buf, n, stride, sink);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t;
    cudaEventElapsedTime(&t, a, b);
    if (r > 0) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int main() {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  const size_t bytes = 4ull << 30;
  void *buf;
  unsigned *sink;
  CHECK(cudaMalloc(&buf, bytes));
  CHECK(cudaMalloc(&sink, 4));
  CHECK(cudaMemset(buf, 1, bytes));
  int sms = prop.multiProcessorCount;
  // One CTA per SM when restricting SMs: more shared memory than half an SM has.
  size_t big = prop.sharedMemPerMultiprocessor / 2 + 1024;
  CHECK(cudaFuncSetAttribute(rd<uint4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big));
  CHECK(cudaFuncSetAttribute(wr<uint4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big));
  printf("# device=%s sms=%d l2=%d bus_bits=%d\n", prop.name, sms, prop.l2CacheSize,
         prop.memoryBusWidth);
  printf("sweep,op,access_bytes,stride,sms,ctas,threads,bytes_touched,ms,gb_s_touched,gb_s_sectors\n");
  auto emit = [&](const char *sweep, bool write, int access, size_t stride, int active, int ctas,
                  int threads, float ms) {
    double touched = (double)bytes / stride;
    // Bytes the 32-byte sectors move: a strided access still moves its whole sector.
    double sector = 32.0;
    double per = std::max((double)access, std::min(sector, (double)access * stride));
    double moved = (double)bytes / ((double)access * stride) * per;
    printf("%s,%s,%d,%zu,%d,%d,%d,%.0f,%.4f,%.1f,%.1f\n", sweep, write ? "write" : "read", access,
           stride, active, ctas, threads, touched, ms, touched / ms / 1e6, moved / ms / 1e6);
  };
  int full = sms * 8;  // 8 CTAs of 256 threads per SM: full occupancy for the streams
  for (int w = 0; w < 2; w++) {
    bool write = w == 1;
    emit("size", write, 4, 1, sms, full, 256, write ? run<unsigned>(true, buf, bytes, 1, full, 256, 0, sink) : run<unsigned>(false, buf, bytes, 1, full, 256, 0, sink));
    emit("size", write, 8, 1, sms, full, 256, write ? run<uint2>(true, buf, bytes, 1, full, 256, 0, sink) : run<uint2>(false, buf, bytes, 1, full, 256, 0, sink));
    emit("size", write, 16, 1, sms, full, 256, write ? run<uint4>(true, buf, bytes, 1, full, 256, 0, sink) : run<uint4>(false, buf, bytes, 1, full, 256, 0, sink));
  }
  for (size_t s : {1, 2, 4, 8, 16, 64, 256})
    emit("stride", false, 16, s, sms, full, 256, run<uint4>(false, buf, bytes, s, full, 256, 0, sink));
  for (int a : {1, 2, 4, 8, 16, 32, 48, 66, 99, 132}) {
    if (a > sms) continue;
    emit("sms", false, 16, 1, a, a, 1024, run<uint4>(false, buf, bytes, 1, a, 1024, big, sink));
    emit("sms", true, 16, 1, a, a, 1024, run<uint4>(true, buf, bytes, 1, a, 1024, big, sink));
  }
  CHECK(cudaGetLastError());
  return 0;
}
