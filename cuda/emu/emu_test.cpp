// Runs every kernel of cuda/kernels/ on the CPU emulator (emu.h) on small
// random problems and compares against float64 references. Exit code 1 on any
// failure, 2 on an unknown family. Build and run: cuda/emu/run_emu.sh [family];
// `cargo test -p cascade-cuda --test emu` runs every family of FAMILIES
// (cuda/src/kernels.rs) and checks that each of its kernels is named on an `ok` line.
//
// Output: one line per check, `ok` or `FAIL`, a label, and after `kernels:` the
// kernels launched (EMU_LAUNCH) since the previous check.
#define CASCADE_EMU 1
#include "emu.h"

#include "../kernels/prelude.cuh"
#include "../kernels/util.cu"
#include "../kernels/gemm.cuh"
#include "../kernels/gemm.cu"
#include "../kernels/attn_unfused.cu"
#include "../kernels/fa2.cu"
#include "../kernels/decode.cu"

#include <algorithm>
#include <random>
#include <string>

static std::mt19937_64 rng(12345);
static std::vector<u16> rand_bf16(size_t n, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<u16> v(n);
  for (auto& x : v) x = f2bf(d(rng));
  return v;
}
static double rel_err(const std::vector<double>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    double e = out[i] - ref[i];
    num += e * e;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::sqrt(den);
}
static int failures = 0;
static int checks = 0;
// The distinct kernels launched since the previous check, in launch order.
static std::string kernels_since_last_check() {
  std::vector<std::string> seen;
  for (const char* n : emu::launched)
    if (std::find(seen.begin(), seen.end(), n) == seen.end()) seen.push_back(n);
  emu::launched.clear();
  std::string out;
  for (const auto& n : seen) out += (out.empty() ? "" : " ") + n;
  return out.empty() ? "-" : out;
}
static void check(const std::string& label, bool ok, const std::string& detail) {
  printf("%-4s %-44s %s  kernels: %s\n", ok ? "ok" : "FAIL", label.c_str(), detail.c_str(),
         kernels_since_last_check().c_str());
  checks++;
  if (!ok) failures++;
}
static void report(const std::string& name, double err, double tol) {
  char buf[64];
  snprintf(buf, sizeof buf, "rel_err=%.3e", err);
  check(name, err <= tol, buf);  // NaN fails
}
template <class T>
static std::vector<double> to_d(const std::vector<T>& v);
template <>
std::vector<double> to_d(const std::vector<u16>& v) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf2f(v[i]);
  return r;
}
template <>
std::vector<double> to_d(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

static void test_gemm(int M, int N, int K, int batch) {
  auto A = rand_bf16((size_t)batch * M * K, 1), B = rand_bf16((size_t)batch * K * N, 1);
  std::vector<u16> C((size_t)batch * M * N, 0xffff);
  const size_t smem = gemm_smem_bytes<128, 128, false, GEMM_STAGES>();
  EMU_LAUNCH(emu::grid(N / 128, M / 128, batch), 256, smem, gemm_bf16_nn_128x128, A.data(), B.data(), C.data(), M,
             N, K, (long long)M * K, (long long)K * N, (long long)M * N);
  std::vector<double> ref(C.size());
  for (int z = 0; z < batch; ++z)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double s = 0;
        for (int k = 0; k < K; ++k)
          s += (double)bf2f(A[(size_t)z * M * K + i * K + k]) * bf2f(B[(size_t)z * K * N + k * N + j]);
        ref[(size_t)z * M * N + i * N + j] = s;
      }
  report("gemm_bf16_nn_128x128 " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
             " b" + std::to_string(batch),
         rel_err(to_d(C), ref), 1e-2);
}

// float64 attention for one head: q,k,v [n][d] -> o [n][d]
static std::vector<double> attn_ref(const u16* q, const u16* k, const u16* v, int n, int d, bool causal) {
  std::vector<double> o((size_t)n * d, 0.0), s(n);
  const double scale = 1.0 / std::sqrt((double)d);
  for (int i = 0; i < n; ++i) {
    const int jn = causal ? i + 1 : n;
    double mx = -1e300;
    for (int j = 0; j < jn; ++j) {
      double a = 0;
      for (int e = 0; e < d; ++e) a += (double)bf2f(q[i * d + e]) * bf2f(k[j * d + e]);
      s[j] = a * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (int j = 0; j < jn; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    for (int j = 0; j < jn; ++j)
      for (int e = 0; e < d; ++e) o[(size_t)i * d + e] += s[j] / sum * bf2f(v[j * d + e]);
  }
  return o;
}

static void test_unfused(int d) {
  const int bh = 2, n = 256;
  auto Q = rand_bf16((size_t)bh * n * d, 2), K = rand_bf16((size_t)bh * n * d, 1), V = rand_bf16((size_t)bh * n * d, 1);
  std::vector<float> S((size_t)bh * n * n, NAN);
  std::vector<u16> P((size_t)bh * n * n, 0xffff), O((size_t)bh * n * d, 0xffff);
  const float scale = 1.0f / std::sqrt((float)d);
  const size_t s_smem = gemm_smem_bytes<128, 128, true, GEMM_STAGES>();
  EMU_LAUNCH(emu::grid(n / 128, n / 128, bh), 256, s_smem, attn_scores_nt, Q.data(), K.data(), S.data(), n, d, scale);
  std::vector<double> sref(S.size()), oref;
  for (int z = 0; z < bh; ++z)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double a = 0;
        for (int e = 0; e < d; ++e)
          a += (double)bf2f(Q[((size_t)z * n + i) * d + e]) * bf2f(K[((size_t)z * n + j) * d + e]);
        sref[((size_t)z * n + i) * n + j] = a * scale;
      }
  report("attn_scores_nt d=" + std::to_string(d), rel_err(to_d(S), sref), 1e-5);
  EMU_LAUNCH(emu::grid(bh * n), 256, 0, softmax_rows, S.data(), P.data(), n);
  const size_t pv_smem = d == 64 ? gemm_smem_bytes<128, 64, false, GEMM_STAGES>()
                                 : gemm_smem_bytes<128, 128, false, GEMM_STAGES>();
  if (d == 64) EMU_LAUNCH(emu::grid(1, n / 128, bh), 256, pv_smem, attn_pv_d64, P.data(), V.data(), O.data(), n);
  else EMU_LAUNCH(emu::grid(1, n / 128, bh), 256, pv_smem, attn_pv_d128, P.data(), V.data(), O.data(), n);
  for (int z = 0; z < bh; ++z) {
    auto o = attn_ref(&Q[(size_t)z * n * d], &K[(size_t)z * n * d], &V[(size_t)z * n * d], n, d, false);
    oref.insert(oref.end(), o.begin(), o.end());
  }
  report("unfused attention (softmax, P.V) d=" + std::to_string(d), rel_err(to_d(O), oref), 2e-2);
}

static void test_fa2(int d, int causal) {
  const int bh = 2, n = 192;
  auto Q = rand_bf16((size_t)bh * n * d, 2), K = rand_bf16((size_t)bh * n * d, 1), V = rand_bf16((size_t)bh * n * d, 1);
  std::vector<u16> O((size_t)bh * n * d, 0xffff);
  const float scale_log2 = (float)(1.0 / std::sqrt((double)d) * 1.4426950408889634);
  const size_t smem = 5 * 64 * (d + 8) * 2;
  if (d == 64) EMU_LAUNCH(emu::grid(n / 64, bh), 128, smem, fa2_fwd_d64, Q.data(), K.data(), V.data(), O.data(), n, scale_log2, causal);
  else EMU_LAUNCH(emu::grid(n / 64, bh), 128, smem, fa2_fwd_d128, Q.data(), K.data(), V.data(), O.data(), n, scale_log2, causal);
  std::vector<double> oref;
  for (int z = 0; z < bh; ++z) {
    auto o = attn_ref(&Q[(size_t)z * n * d], &K[(size_t)z * n * d], &V[(size_t)z * n * d], n, d, causal);
    oref.insert(oref.end(), o.begin(), o.end());
  }
  report("fa2_fwd d=" + std::to_string(d) + " causal=" + std::to_string(causal), rel_err(to_d(O), oref), 2e-2);
}

static void test_decode(int L, int chunk) {
  const int B = 2, hkv = 2, hq = 8, D = 128, G = hq / hkv;
  const int nsplit = (L + chunk - 1) / chunk;
  auto q = rand_bf16((size_t)B * hq * D, 2), kc = rand_bf16((size_t)B * hkv * L * D, 1),
       vc = rand_bf16((size_t)B * hkv * L * D, 1);
  std::vector<float> po((size_t)B * hq * nsplit * D, NAN), pm((size_t)B * hq * nsplit, NAN),
      pl((size_t)B * hq * nsplit, NAN);
  std::vector<u16> out((size_t)B * hq * D, 0xffff);
  const float scale = 1.0f / std::sqrt((float)D);
  EMU_LAUNCH(emu::grid(nsplit, hkv, B), 128, 0, decode_splitkv_g4_d128, q.data(), kc.data(), vc.data(), po.data(),
             pm.data(), pl.data(), hq, hkv, L, chunk, nsplit, scale);
  EMU_LAUNCH(emu::grid(hq, B), 128, 0, decode_combine_d128, po.data(), pm.data(), pl.data(), out.data(), hq, nsplit);
  std::vector<double> ref;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < hq; ++h) {
      const int kh = h / G;
      const u16* kp = &kc[((size_t)b * hkv + kh) * L * D];
      const u16* vp = &vc[((size_t)b * hkv + kh) * L * D];
      const u16* qp = &q[((size_t)b * hq + h) * D];
      std::vector<double> s(L);
      double mx = -1e300;
      for (int j = 0; j < L; ++j) {
        double a = 0;
        for (int e = 0; e < D; ++e) a += (double)bf2f(qp[e]) * bf2f(kp[(size_t)j * D + e]);
        s[j] = a / std::sqrt((double)D);
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int e = 0; e < D; ++e) {
        double o = 0;
        for (int j = 0; j < L; ++j) o += s[j] / sum * bf2f(vp[(size_t)j * D + e]);
        ref.push_back(o);
      }
    }
  report("decode splitkv L=" + std::to_string(L) + " chunk=" + std::to_string(chunk), rel_err(to_d(out), ref),
         2e-2);
}

static void test_util() {
  const long long n = 10000;
  std::vector<u16> p(n, 0);
  EMU_LAUNCH(emu::grid(4), 64, 0, fill_rand_bf16, p.data(), n, 42ull, 1.0f);
  double mn = 1e9, mx = -1e9, mean = 0;
  for (auto v : p) {
    double f = bf2f(v);
    mn = std::min(mn, f);
    mx = std::max(mx, f);
    mean += f / n;
  }
  char buf[160];
  snprintf(buf, sizeof buf, "min=%.3f max=%.3f mean=%.4f", mn, mx, mean);
  check("fill_rand_bf16 uniform in [-1, 1)", mn >= -1.0 && mx <= 1.0 && mn < -0.99 && mx > 0.99 && std::fabs(mean) < 0.05,
        buf);
  p[17] = 0x7fc0;   // NaN
  p[9999] = 0xff80; // -Inf
  u64 cnt = 0;
  EMU_LAUNCH(emu::grid(2), 64, 0, count_nonfinite_bf16, p.data(), n, &cnt);
  snprintf(buf, sizeof buf, "count=%llu (expect 2)", cnt);
  check("count_nonfinite_bf16", cnt == 2, buf);
  std::vector<float> f(n, 1.5f);
  f[0] = NAN;
  f[5000] = INFINITY;
  f[9999] = -INFINITY;
  cnt = 0;
  EMU_LAUNCH(emu::grid(3), 64, 0, count_nonfinite_f32, f.data(), n, &cnt);
  snprintf(buf, sizeof buf, "count=%llu (expect 3)", cnt);
  check("count_nonfinite_f32", cnt == 3, buf);
}

// The pointer chase visits every line once per cycle (full-period LCG) and the chase kernel
// follows it: after `lines` steps it is back at its start, and never earlier.
static void test_chase() {
  const unsigned lines = 4096;
  std::vector<u32> p((size_t)lines * 32, 0xffffffffu);
  EMU_LAUNCH(emu::grid(4), 64, 0, chase_init, p.data(), lines);
  std::vector<char> seen(lines, 0);
  u32 j = 0;
  unsigned steps = 0;
  do {
    seen[j / 32] = 1;
    j = p[j];
    ++steps;
  } while (j != 0 && steps <= lines);
  unsigned visited = 0;
  for (char c : seen) visited += c;
  u32 out = 1;
  // (the emulator runs whole warps: 32 threads follow the same chain and store the same value)
  EMU_LAUNCH(emu::grid(1), 32, 0, chase_u32, p.data(), (int)lines, 0, &out);
  char buf[160];
  snprintf(buf, sizeof buf, "cycle of %u steps, %u of %u lines visited, back at %u (expect %u, %u, 0)", steps, visited,
           lines, out, lines, lines);
  check("pointer chase", steps == lines && visited == lines && out == 0, buf);
}

// The fixed-cost diagnostics: one word per CTA, and a 128 x 128 bf16 tile per CTA written in
// full (every element of each tile, nothing outside: AddressSanitizer and the poison around).
static void test_fixed() {
  const unsigned ctas = 3;
  std::vector<u32> w(ctas, 0);
  const size_t smem = gemm_smem_bytes<128, 128, false, GEMM_STAGES>();
  EMU_LAUNCH(emu::grid(ctas), 256, smem, noop_dyn_smem, w.data());
  bool ok = true;
  for (u32 v : w) ok = ok && v == 1;
  check("noop_dyn_smem one word per CTA", ok, "");
  const int ld = 128 * ctas;
  std::vector<u16> t((size_t)128 * ld, 0);
  EMU_LAUNCH(emu::grid(ctas), 256, 0, store_tile_bf16, t.data(), ld);
  size_t written = 0;
  for (u16 v : t) written += v == 0x3f80;
  char buf[96];
  snprintf(buf, sizeof buf, "%zu of %zu elements written", written, t.size());
  check("store_tile_bf16 tiles in full", written == t.size(), buf);
}

int main(int argc, char** argv) {
  // Families as in FAMILIES (cuda/src/kernels.rs); `smem` prints the dynamic shared memory
  // of the kernels that use it, as computed here from the kernels' own templates.
  const std::string only = argc > 1 ? argv[1] : "";
  const char* known[] = {"util", "gemm", "attn_unfused", "fa2", "decode", "smem"};
  if (!only.empty() && std::find(std::begin(known), std::end(known), only) == std::end(known)) {
    fprintf(stderr, "unknown kernel family '%s' (util gemm attn_unfused fa2 decode smem)\n", only.c_str());
    return 2;
  }
  auto want = [&](const char* s) { return only.empty() || only == s; };
  if (want("util")) {
    test_util();
    test_chase();
    test_fixed();
  }
  if (want("gemm")) {
    test_gemm(256, 384, 224, 2);
    test_gemm(128, 256, 32, 1);
    test_gemm(128, 128, 64, 1);
  }
  if (want("smem")) {  // must match DYN_SMEM_TABLE in cuda/src/kernels.rs (cuda/tests/emu.rs checks)
    printf("smem gemm_bf16_nn_128x128 %d\n", gemm_smem_bytes<128, 128, false, GEMM_STAGES>());
    printf("smem attn_scores_nt %d\n", gemm_smem_bytes<128, 128, true, GEMM_STAGES>());
    printf("smem attn_pv_d64 %d\n", gemm_smem_bytes<128, 64, false, GEMM_STAGES>());
    printf("smem attn_pv_d128 %d\n", gemm_smem_bytes<128, 128, false, GEMM_STAGES>());
    printf("smem fa2_fwd_d64 %d\n", 5 * 64 * (64 + 8) * 2);
    printf("smem fa2_fwd_d128 %d\n", 5 * 64 * (128 + 8) * 2);
    printf("smem noop_dyn_smem %d\n", gemm_smem_bytes<128, 128, false, GEMM_STAGES>());
  }
  if (want("attn_unfused")) {
    test_unfused(64);
    test_unfused(128);
  }
  if (want("fa2")) {
    test_fa2(64, 0);
    test_fa2(64, 1);
    test_fa2(128, 0);
    test_fa2(128, 1);
  }
  if (want("decode")) {
    test_decode(1000, 256);
    test_decode(1000, 1024);
    test_decode(96, 64);
  }
  printf("%s (%d checks, %d failures)\n", failures ? "FAILED" : "ALL OK", checks, failures);
  return failures ? 1 : 0;
}
