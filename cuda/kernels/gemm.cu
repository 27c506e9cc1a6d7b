// ours_mma: C[M,N] (bf16) = A[M,K] (bf16) * B[K,N] (bf16), all row-major, fp32
// accumulation. Batched through blockIdx.z with element strides sA, sB, sC.
// grid = (N/128, M/128, batch), block = 256,
// dynamic smem = gemm_smem_bytes<128, 128, false, GEMM_STAGES>() = 75776 bytes.
KERNEL void __launch_bounds__(256) gemm_bf16_nn_128x128(const u16* A, const u16* B, u16* C, int M, int N,
                                                        int K, long long sA, long long sB, long long sC) {
  (void)M;
  (void)N;
  DYN_SMEM(smem_raw);
  const long long z = blockIdx.z;
  gemm_tile<128, 128, false, false, GEMM_STAGES>(A + z * sA, B + z * sB, C + z * sC, K, K, N, N, 1.0f,
                                                 blockIdx.y * 128, blockIdx.x * 128, (u16*)smem_raw);
}
