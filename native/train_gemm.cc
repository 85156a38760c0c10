// Training's matrix products (contract: src/train/step-products.ts):
//
//   matmul(A, B, C, m, k, n, transA, transB, relu, gate)   C[m×n] = op(A)[m×k] · op(B)[k×n]
//
// The path follows the addon's one SIMD switch (simd_level.cc: simdLevel / setSimdLevel).
//
// float32, row-major; op(A) = A, or Aᵀ when transA (A is then stored k×m), likewise B. Epilogue: relu sets
// C = max(C, 0); gate (a Float32Array of m×n, or null) multiplies C by (gate > 0), the ReLU derivative of a
// layer's activations in the backward pass.
//
// Every path computes each element of C as the same chain of fused multiply-adds in k order from zero,
// c = fma(a_k, b_k, c) for k = 0, 1, ..., K−1: vector lanes run over columns of C, never over k, and a K block
// continues from the stored float. So AVX-512, AVX2 and scalar give the same bits; the wasm products
// (XNNPACK) sum in another order, so they differ from these in the last bits (see step-products.ts).
//
// Goto-style blocking on one thread (training runs one process per core): a K block of B is packed into
// panels of NR columns (kept in L2), a block of A into panels of MR rows, and an MR×NR register tile
// accumulates over the K block, the B panel staying in L1 while the A panels stream past it. Packing also
// does the transposes, so the trainer needs no transposed copies. The AVX-512 and AVX2 kernels carry their own
// target attributes and are picked at run time (the addon is built with generic flags and runs on any x86-64).

#include "train_gemm.h"

#include "kernel_common.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace {

constexpr size_t kKc = 256;  // K block: an MR×KC A panel plus a KC×NR B panel fit in L1 (8 KiB + 32 KiB)
constexpr size_t kMcPanels = 16;  // A block: 16 panels of MR rows (≤ 128 KiB, in L2)

using supsup::Simd;

// A matrix by element strides: element (i, j) is at data[i * rs + j * cs].
struct View {
  const float* data;
  size_t rs, cs;
  float at(size_t i, size_t j) const { return data[i * rs + j * cs]; }
};

// Rows [i0, i0+rows) × k [k0, k0+kc) of A, as panels of `mr` rows: panel p holds, for each k, mr consecutive
// values (rows past the end are zero).
void PackA(const View& a, size_t i0, size_t rows, size_t k0, size_t kc, size_t mr, float* out) {
  for (size_t p = 0; p < rows; p += mr, out += kc * mr) {
    const size_t r_end = std::min(mr, rows - p);
    if (a.cs == 1) {  // row-major A: read each row along k
      for (size_t r = 0; r < r_end; r++) {
        const float* row = a.data + (i0 + p + r) * a.rs + k0;
        for (size_t k = 0; k < kc; k++) out[k * mr + r] = row[k];
      }
    } else {  // transposed A: the panel's rows are side by side in memory
      for (size_t k = 0; k < kc; k++)
        for (size_t r = 0; r < r_end; r++) out[k * mr + r] = a.at(i0 + p + r, k0 + k);
    }
    for (size_t r = r_end; r < mr; r++)
      for (size_t k = 0; k < kc; k++) out[k * mr + r] = 0;
  }
}

// k [k0, k0+kc) × all n columns of B, as panels of `nr` columns: panel p holds, for each k, nr consecutive
// values (columns past the end are zero). Row-major B copies rows; transposed B reads nr rows of Bᵀ side by side.
void PackB(const View& b, size_t k0, size_t kc, size_t n, size_t nr, float* out) {
  for (size_t p = 0; p < n; p += nr) {
    const size_t c_end = std::min(nr, n - p);
    if (b.cs == 1) {
      for (size_t k = 0; k < kc; k++, out += nr) {
        const float* row = b.data + (k0 + k) * b.rs + p;
        std::copy(row, row + c_end, out);
        std::fill(out + c_end, out + nr, 0.0f);
      }
    } else {
      // 16 k at a time (one cache line of each row of Bᵀ), so the lines written stay few.
      for (size_t kb = 0; kb < kc; kb += 16) {
        const size_t k_end = std::min(kc, kb + 16);
        for (size_t c = 0; c < nr; c++) {
          if (c < c_end) {
            const float* col = b.data + (p + c) * b.cs + (k0 + kb) * b.rs;
            for (size_t k = kb; k < k_end; k++) out[k * nr + c] = col[(k - kb) * b.rs];
          } else {
            for (size_t k = kb; k < k_end; k++) out[k * nr + c] = 0;
          }
        }
      }
      out += kc * nr;
    }
  }
}

// Scalar kernel: tile[MR×NR] (row stride ldc) = (first ? 0 : tile) + A panel · B panel over kc.
template <size_t MR, size_t NR>
void KernelScalar(size_t kc, const float* a, const float* b, float* c, size_t ldc, bool first) {
  float acc[MR][NR];
  for (size_t r = 0; r < MR; r++)
    for (size_t j = 0; j < NR; j++) acc[r][j] = first ? 0.0f : c[r * ldc + j];
  for (size_t k = 0; k < kc; k++, a += MR, b += NR)
    for (size_t r = 0; r < MR; r++)
      for (size_t j = 0; j < NR; j++) acc[r][j] = std::fma(a[r], b[j], acc[r][j]);
  for (size_t r = 0; r < MR; r++)
    for (size_t j = 0; j < NR; j++) c[r * ldc + j] = acc[r][j];
}

#if SUPSUP_HAS_X86
// AVX2: 6 rows × 16 columns, 12 ymm accumulators.
SUPSUP_AVX2 void KernelAvx2(size_t kc, const float* a, const float* b, float* c, size_t ldc, bool first) {
  constexpr size_t MR = 6;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (size_t r = 0; r < MR; r++) {
    acc[r][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + r * ldc);
    acc[r][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + r * ldc + 8);
  }
  for (size_t k = 0; k < kc; k++, a += MR, b += 16) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (size_t r = 0; r < MR; r++) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (size_t r = 0; r < MR; r++) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

// AVX-512: 8 rows × 32 columns, 16 zmm accumulators.
SUPSUP_AVX512 void KernelAvx512(size_t kc, const float* a, const float* b, float* c, size_t ldc, bool first) {
  constexpr size_t MR = 8;
  __m512 acc[MR][2];
#pragma GCC unroll 8
  for (size_t r = 0; r < MR; r++) {
    acc[r][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc);
    acc[r][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16);
  }
  for (size_t k = 0; k < kc; k++, a += MR, b += 32) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (size_t r = 0; r < MR; r++) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}
#endif

using Kernel = void (*)(size_t kc, const float* a, const float* b, float* c, size_t ldc, bool first);

struct Shape {
  size_t mr, nr;
  Kernel kernel;
};

Shape ShapeOf(Simd simd) {
#if SUPSUP_HAS_X86
  if (simd == Simd::kAvx512) return {8, 32, KernelAvx512};
  if (simd == Simd::kAvx2) return {6, 16, KernelAvx2};
#endif
  (void)simd;
  return {4, 16, KernelScalar<4, 16>};
}

// C = op(A) · op(B), then the epilogue.
void Matmul(const View& a, const View& b, float* c, size_t m, size_t k, size_t n, bool relu, const float* gate) {
  const Shape s = ShapeOf(supsup::CurrentSimd());
  if (k == 0) std::fill(c, c + m * n, 0.0f);
  const size_t n_pad = (n + s.nr - 1) / s.nr * s.nr, mc = kMcPanels * s.mr;
  thread_local std::vector<float> a_pack, b_pack;
  a_pack.resize(mc * kKc);
  b_pack.resize(kKc * n_pad);
  float edge[8 * 32];  // an edge tile (at most MR × NR of any path)
  const size_t k_blocks = (k + kKc - 1) / kKc, k_step = (k + k_blocks - 1) / std::max<size_t>(k_blocks, 1);  // even blocks
  for (size_t k0 = 0; k0 < k; k0 += k_step) {
    const size_t kc = std::min(k_step, k - k0);
    const bool first = k0 == 0;
    PackB(b, k0, kc, n, s.nr, b_pack.data());
    for (size_t i0 = 0; i0 < m; i0 += mc) {
      const size_t rows = std::min(mc, m - i0);
      PackA(a, i0, rows, k0, kc, s.mr, a_pack.data());
      for (size_t j = 0; j < n; j += s.nr) {
        const float* bp = b_pack.data() + j * kc;
        const size_t cols = std::min(s.nr, n - j);
        for (size_t i = 0; i < rows; i += s.mr) {
          const float* ap = a_pack.data() + i * kc;
          float* tile = c + (i0 + i) * n + j;
          const size_t tr = std::min(s.mr, rows - i);
          if (tr == s.mr && cols == s.nr) {
            s.kernel(kc, ap, bp, tile, n, first);
            continue;
          }
          for (size_t r = 0; r < tr && !first; r++) std::copy(tile + r * n, tile + r * n + cols, edge + r * s.nr);
          s.kernel(kc, ap, bp, edge, s.nr, first);
          for (size_t r = 0; r < tr; r++) std::copy(edge + r * s.nr, edge + r * s.nr + cols, tile + r * n);
        }
      }
    }
  }
  const size_t total = m * n;
  if (relu)
    for (size_t i = 0; i < total; i++) c[i] = c[i] > 0 ? c[i] : 0.0f;
  if (gate)
    for (size_t i = 0; i < total; i++) c[i] *= gate[i] > 0 ? 1.0f : 0.0f;  // a multiply, as tfjs's mul(x, step(h))
}

// ---------------------------------------------------------------------------------------------------------
// N-API glue: check every length against the shape (the kernels trust them).

bool Fail(const Napi::Env& env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

bool GetFloats(const Napi::Env& env, const Napi::Value& v, const char* name, float*& data, size_t& length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    Napi::TypeError::New(env, std::string(name) + " must be a Float32Array").ThrowAsJavaScriptException();
    return false;
  }
  auto array = v.As<Napi::Float32Array>();
  data = array.Data();
  length = array.ElementLength();
  return true;
}

bool GetDim(const Napi::Env& env, const Napi::Value& v, const char* name, size_t& out) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 1e9 && d == double(size_t(d)))) return Fail(env, std::string(name) + " must be a non-negative integer");
  out = size_t(d);
  return true;
}

bool GetBool(const Napi::Env& env, const Napi::Value& v, const char* name, bool& out) {
  if (!v.IsBoolean()) {
    Napi::TypeError::New(env, std::string(name) + " must be a boolean").ThrowAsJavaScriptException();
    return false;
  }
  out = v.As<Napi::Boolean>().Value();
  return true;
}

Napi::Value JsMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *a, *b, *c, *gate = nullptr;
  size_t na, nb, nc, ng = 0, m, k, n;
  bool trans_a, trans_b, relu;
  if (!GetFloats(env, info[0], "A", a, na) || !GetFloats(env, info[1], "B", b, nb) || !GetFloats(env, info[2], "C", c, nc) ||
      !GetDim(env, info[3], "m", m) || !GetDim(env, info[4], "k", k) || !GetDim(env, info[5], "n", n) ||
      !GetBool(env, info[6], "transA", trans_a) || !GetBool(env, info[7], "transB", trans_b) || !GetBool(env, info[8], "relu", relu))
    return env.Undefined();
  if (!info[9].IsNull() && !info[9].IsUndefined() && !GetFloats(env, info[9], "gate", gate, ng)) return env.Undefined();
  if (na != m * k) Fail(env, "A has " + std::to_string(na) + " elements, m × k = " + std::to_string(m * k));
  else if (nb != k * n) Fail(env, "B has " + std::to_string(nb) + " elements, k × n = " + std::to_string(k * n));
  else if (nc != m * n) Fail(env, "C has " + std::to_string(nc) + " elements, m × n = " + std::to_string(m * n));
  else if (gate && ng != m * n) Fail(env, "gate has " + std::to_string(ng) + " elements, m × n = " + std::to_string(m * n));
  else if (c == a || c == b) Fail(env, "C must not be A or B");
  else {
    const View va = trans_a ? View{a, 1, m} : View{a, k, 1};
    const View vb = trans_b ? View{b, 1, k} : View{b, n, 1};
    Matmul(va, vb, c, m, k, n, relu, gate);
  }
  return env.Undefined();
}

}  // namespace

// Call after RegisterSimdLevel, which detects the CPU's level.
void RegisterTrainGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, JsMatmul, "matmul"));
}
