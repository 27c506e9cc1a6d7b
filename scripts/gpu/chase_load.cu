// The round trip of a dependent 1 KiB load under load (issue 10: the norms' loaded latency).
// A development experiment, in no scored set: it measures the memory system, not a library op.
//
// Each CTA of 128 threads walks its own chain of 1 KiB blocks through a 4 GiB buffer (70x the
// L2): every thread loads 8 bytes of the block (4 warps x 256 B, as torch's
// vectorized_layer_norm_kernel loads one iteration of a row), and the next block's index is in
// the data, so a CTA has one block in flight at a time, as a norm row does (its loop is not
// pipelined). With `write`, each CTA also stores the block it loaded to a second 4 GiB buffer,
// as a norm row stores its normalized elements. `k` CTAs per SM (grid 132 k, all resident up to
// 16) set the load: the rows in flight. Per hop: the CTA's %globaltimer span / hops, averaged
// over the CTAs; the aggregate rate from cudaEvents around the kernel. Median of 5 runs after a
// warm-up, each run on blocks no earlier run touched. `__launch_bounds__(128, 16)` keeps the
// registers at 32 or fewer, so 16 CTAs fit on an SM, as the norm kernels (27 and 32 registers).
// Build: nvcc -O3 -gencode=arch=compute_90,code=sm_90 chase_load.cu -o chase_load
// Run:   ./chase_load > chase_load.csv
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
#include <numeric>
#include <random>
#include <vector>

#define CHECK(x)                                                                         \
  do {                                                                                   \
    cudaError_t e = (x);                                                                 \
    if (e != cudaSuccess) {                                                              \
      fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e));          \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

constexpr int THREADS = 128;  // 128 x 8 B = 1 KiB per hop

__device__ __forceinline__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void fill(uint2 *buf, const unsigned *next, size_t nblocks) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  size_t n = nblocks * THREADS;
  for (; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t b = i / THREADS;
    buf[i] = make_uint2(next[b], (unsigned)b);
  }
}

__global__ void __launch_bounds__(THREADS, 16) chase(const uint2 *__restrict__ buf, uint2 *__restrict__ out,
                      const unsigned *__restrict__ start, int hops, int write,
                      unsigned long long *span, unsigned *sink) {
  unsigned blk = start[blockIdx.x];
  unsigned acc = 0;
  __syncthreads();
  uint64_t t0 = now_ns();
  for (int h = 0; h < hops; h++) {
    uint2 v = buf[(size_t)blk * THREADS + threadIdx.x];
    acc ^= v.y;
    if (write) out[(size_t)blk * THREADS + threadIdx.x] = v;
    blk = v.x;
  }
  __syncthreads();
  uint64_t t1 = now_ns();
  if (threadIdx.x == 0) span[blockIdx.x] = t1 - t0;
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

int main() {
  const size_t bytes = 4ull << 30;
  const size_t nblocks = bytes / (THREADS * sizeof(uint2));
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  // One random cycle over all blocks; CTA c of run r starts at position c * seg + r * hops.
  std::vector<unsigned> order(nblocks);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(12345);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<unsigned> next(nblocks);
  for (size_t i = 0; i < nblocks; i++) next[order[i]] = order[(i + 1) % nblocks];
  uint2 *buf, *out;
  unsigned *d_next, *d_start, *sink;
  unsigned long long *d_span;
  CHECK(cudaMalloc(&buf, bytes));
  CHECK(cudaMalloc(&out, bytes));
  CHECK(cudaMalloc(&d_next, nblocks * sizeof(unsigned)));
  CHECK(cudaMalloc(&sink, sizeof(unsigned)));
  CHECK(cudaMemcpy(d_next, next.data(), nblocks * sizeof(unsigned), cudaMemcpyHostToDevice));
  fill<<<4096, 256>>>(buf, d_next, nblocks);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  const int hops = 48, runs = 6;
  const int max_grid = sms * 16;
  CHECK(cudaMalloc(&d_start, max_grid * sizeof(unsigned)));
  CHECK(cudaMalloc(&d_span, max_grid * sizeof(unsigned long long)));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  printf("ctas_per_sm,write,grid,hops,hop_ns_mean,hop_ns_p50,hop_ns_p90,kernel_us,read_tb_s,total_tb_s\n");
  const int ks[] = {1, 2, 3, 4, 6, 8, 10, 11, 12, 14, 16};
  for (int write = 0; write <= 1; write++) {
    for (int k : ks) {
      int grid = sms * k;
      size_t seg = nblocks / grid;
      std::vector<double> means, kernel;
      std::vector<double> all_hops;
      for (int r = 0; r < runs; r++) {
        std::vector<unsigned> start(grid);
        for (int c = 0; c < grid; c++) start[c] = order[c * seg + (size_t)r * hops];
        CHECK(cudaMemcpy(d_start, start.data(), grid * sizeof(unsigned), cudaMemcpyHostToDevice));
        CHECK(cudaEventRecord(e0));
        chase<<<grid, THREADS>>>(buf, out, d_start, hops, write, d_span, sink);
        CHECK(cudaEventRecord(e1));
        CHECK(cudaGetLastError());
        CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, e0, e1));
        std::vector<unsigned long long> span(grid);
        CHECK(cudaMemcpy(span.data(), d_span, grid * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
        if (r == 0) continue;  // warm-up
        double s = 0;
        for (auto x : span) {
          s += (double)x / hops;
          all_hops.push_back((double)x / hops);
        }
        means.push_back(s / grid);
        kernel.push_back(ms * 1e3);
      }
      std::sort(means.begin(), means.end());
      std::sort(kernel.begin(), kernel.end());
      std::sort(all_hops.begin(), all_hops.end());
      double m = means[means.size() / 2], kus = kernel[kernel.size() / 2];
      double p50 = all_hops[all_hops.size() / 2], p90 = all_hops[all_hops.size() * 9 / 10];
      double rd = (double)grid * hops * 1024.0 / (kus * 1e-6) / 1e12;
      printf("%d,%d,%d,%d,%.1f,%.1f,%.1f,%.2f,%.3f,%.3f\n", k, write, grid, hops, m, p50, p90, kus,
             rd, rd * (write ? 2.0 : 1.0));
    }
  }
  return 0;
}
