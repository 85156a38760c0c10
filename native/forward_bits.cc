// Given-task forward pass straight from the packed bits (contract: src/core/kernels/forward-bits.ts).
//
//   forwardBits(bank, words, slot, signs, sizes, scales, x, batch, out)
//
// With signed-constant weights, layer l of task t is c_l · T_l where T_l = sign ⊙ mask ∈ {−1, 0, +1}: so
// z = c_l · (a @ T_l), and T_l is two bit sets, pos = mask AND sign and neg = mask AND NOT sign. Per call the
// task's mask words are gathered out of the bank's 8-slot interleave into pos/neg (2 × P/8 bytes of per-thread
// scratch, rewritten by every call: not a cache), then each layer runs as a GEMM whose weight panel is expanded from
// the bits: for one or a few rows on the fly inside the multiply (no weight memory traffic at all), for more
// rows once per panel into an L2-sized buffer that every row tile of the batch then streams.
//
// Layout: weight (i, j) of layer l is flat bit offset_l + i·out_l + j (docs/model-format.md §2), so the
// weights of input i for a panel of columns are a run of consecutive bits: one 64-bit read gives 64 columns.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;  // BLOCK_SLOTS of the bank

struct Layer {
  size_t in, out, offset;  // offset: flat bit index of weight (0, 0)
  float scale;             // c_l
  bool relu;               // ReLU on the output (every layer but the last)
};

// 64 bits of `w` starting at bit `bit` (w is padded by 2 words past the last one read).
inline uint64_t Bits64(const uint32_t* w, size_t bit) {
  const size_t i = bit >> 5, sh = bit & 31;
  const uint64_t lo = uint64_t(w[i]) | uint64_t(w[i + 1]) << 32;
  return sh ? (lo >> sh) | (uint64_t(w[i + 2]) << (64 - sh)) : lo;
}

inline uint64_t LowMask(size_t cols) { return cols >= 64 ? ~uint64_t(0) : (uint64_t(1) << cols) - 1; }

// One layer's work: rows [r0, r1) of the batch times columns [j0, j0 + cols) of T.
struct Job {
  const Layer* L;
  const uint32_t* pos;
  const uint32_t* neg;
  const float* a;  // batch × in
  float* z;        // batch × out
};

// ----- scalar -------------------------------------------------------------------------------------------

void PanelScalar(const Job& job, size_t r0, size_t r1, size_t j0, size_t cols) {
  const Layer& L = *job.L;
  std::vector<float> acc(cols);
  for (size_t r = r0; r < r1; r++) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const float* a = job.a + r * L.in;
    for (size_t i = 0; i < L.in; i++) {
      const float x = a[i];
      const size_t bit = L.offset + i * L.out + j0;
      for (size_t q = 0; q < cols; q += 64) {
        const uint64_t keep = LowMask(cols - q);
        const uint64_t p = Bits64(job.pos, bit + q) & keep, n = Bits64(job.neg, bit + q) & keep;
        for (uint64_t m = p; m; m &= m - 1) acc[q + __builtin_ctzll(m)] += x;
        for (uint64_t m = n; m; m &= m - 1) acc[q + __builtin_ctzll(m)] -= x;
      }
    }
    float* z = job.z + r * L.out + j0;
    for (size_t j = 0; j < cols; j++) z[j] = L.relu ? std::max(acc[j] * L.scale, 0.0f) : acc[j] * L.scale;
  }
}

#if SUPSUP_HAS_X86
// ----- AVX-512: panels of 64 columns (4 zmm), tiles of 6 rows: 24 accumulators ------------------------------

constexpr size_t kPanel512 = 64, kRows512 = 6;

SUPSUP_AVX512 inline void Expand512(uint64_t p, uint64_t n, __m512* w) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), minus = _mm512_set1_ps(-1.0f);
  for (int q = 0; q < 4; q++)
    w[q] = _mm512_mask_blend_ps(__mmask16(n >> (16 * q)), _mm512_mask_blend_ps(__mmask16(p >> (16 * q)), zero, one), minus);
}

// acc = a[rows] @ T[:, panel], with T's panel either expanded from the bits per input (packed == nullptr)
// or read from `packed` (in × 64 floats).
template <int R>
SUPSUP_AVX512 void Tile512(const Job& job, size_t r0, size_t j0, size_t cols, const float* packed) {
  const Layer& L = *job.L;
  __m512 acc[R][4];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
  const float* a = job.a + r0 * L.in;
  const uint64_t keep = LowMask(cols);
  for (size_t i = 0; i < L.in; i++) {
    __m512 w[4];
    if (packed) {
      for (int q = 0; q < 4; q++) w[q] = _mm512_load_ps(packed + i * kPanel512 + 16 * q);
    } else {
      const size_t bit = L.offset + i * L.out + j0;
      Expand512(Bits64(job.pos, bit) & keep, Bits64(job.neg, bit) & keep, w);
    }
    for (int r = 0; r < R; r++) {
      const __m512 x = _mm512_set1_ps(a[r * L.in + i]);
      for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
    }
  }
  const __m512 scale = _mm512_set1_ps(L.scale), zero = _mm512_setzero_ps();
  for (int r = 0; r < R; r++) {
    float* z = job.z + (r0 + r) * L.out + j0;
    for (int q = 0; q < 4 && 16 * q < int(cols); q++) {
      __m512 v = _mm512_mul_ps(acc[r][q], scale);
      if (L.relu) v = _mm512_mask_max_ps(v, 0xffff, v, zero);  // the masked form: GCC 12 warns on the plain one
      _mm512_mask_storeu_ps(z + 16 * q, __mmask16(keep >> (16 * q)), v);
    }
  }
}

SUPSUP_AVX512 void Pack512(const Job& job, size_t j0, size_t cols, float* packed) {
  const Layer& L = *job.L;
  const uint64_t keep = LowMask(cols);
  for (size_t i = 0; i < L.in; i++) {
    const size_t bit = L.offset + i * L.out + j0;
    __m512 w[4];
    Expand512(Bits64(job.pos, bit) & keep, Bits64(job.neg, bit) & keep, w);
    for (int q = 0; q < 4; q++) _mm512_store_ps(packed + i * kPanel512 + 16 * q, w[q]);
  }
}

template <int R>
SUPSUP_AVX512 void Rows512(const Job& job, size_t r0, size_t j0, size_t cols, const float* packed) {
  Tile512<R>(job, r0, j0, cols, packed);
}

SUPSUP_AVX512 void Panel512(const Job& job, size_t r0, size_t r1, size_t j0, size_t cols, float* packed) {
  const float* w = nullptr;
  if (r1 - r0 > kRows512) {  // more than one row tile: expand the panel once, then stream it per tile
    Pack512(job, j0, cols, packed);
    w = packed;
  }
  size_t r = r0;
  for (; r + kRows512 <= r1; r += kRows512) Tile512<kRows512>(job, r, j0, cols, w);
  switch (r1 - r) {
    case 5: Tile512<5>(job, r, j0, cols, w); break;
    case 4: Tile512<4>(job, r, j0, cols, w); break;
    case 3: Tile512<3>(job, r, j0, cols, w); break;
    case 2: Tile512<2>(job, r, j0, cols, w); break;
    case 1: Tile512<1>(job, r, j0, cols, w); break;
    default: break;
  }
}

// ----- AVX2: panels of 16 columns (2 ymm), tiles of 6 rows: 12 accumulators (the classic 6x16 AVX2 GEMM tile) --

constexpr size_t kPanel256 = 16, kRows256 = 6;
constexpr int kQ256 = kPanel256 / 8;

SUPSUP_AVX2 inline __m256 Lanes8(uint32_t bits8) {  // all-ones in lane t where bit t is set
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i b = _mm256_and_si256(_mm256_set1_epi32(int(bits8)), sel);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, sel));
}

SUPSUP_AVX2 inline void Expand256(uint32_t p, uint32_t n, __m256* w) {
  const __m256 one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
  for (int q = 0; q < kQ256; q++)
    w[q] = _mm256_or_ps(_mm256_and_ps(Lanes8(p >> (8 * q)), one), _mm256_and_ps(Lanes8(n >> (8 * q)), minus));
}

template <int R>
SUPSUP_AVX2 void Tile256(const Job& job, size_t r0, size_t j0, size_t cols, const float* packed) {
  const Layer& L = *job.L;
  __m256 acc[R][kQ256];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < kQ256; q++) acc[r][q] = _mm256_setzero_ps();
  const float* a = job.a + r0 * L.in;
  const uint32_t keep = uint32_t(LowMask(cols));
  for (size_t i = 0; i < L.in; i++) {
    __m256 w[kQ256];
    if (packed) {
      for (int q = 0; q < kQ256; q++) w[q] = _mm256_load_ps(packed + i * kPanel256 + 8 * q);
    } else {
      const size_t bit = L.offset + i * L.out + j0;
      Expand256(uint32_t(Bits64(job.pos, bit)) & keep, uint32_t(Bits64(job.neg, bit)) & keep, w);
    }
    for (int r = 0; r < R; r++) {
      const __m256 x = _mm256_broadcast_ss(a + r * L.in + i);
      for (int q = 0; q < kQ256; q++) acc[r][q] = _mm256_fmadd_ps(x, w[q], acc[r][q]);
    }
  }
  const __m256 scale = _mm256_set1_ps(L.scale), zero = _mm256_setzero_ps();
  for (int r = 0; r < R; r++) {
    float* z = job.z + (r0 + r) * L.out + j0;
    for (int q = 0; q < kQ256 && 8 * q < int(cols); q++) {
      __m256 v = _mm256_mul_ps(acc[r][q], scale);
      if (L.relu) v = _mm256_max_ps(v, zero);
      if (8 * q + 8 <= int(cols)) {
        _mm256_storeu_ps(z + 8 * q, v);
      } else {
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, v);
        std::memcpy(z + 8 * q, tmp, (cols - 8 * q) * sizeof(float));
      }
    }
  }
}

SUPSUP_AVX2 void Pack256(const Job& job, size_t j0, size_t cols, float* packed) {
  const Layer& L = *job.L;
  const uint32_t keep = uint32_t(LowMask(cols));
  for (size_t i = 0; i < L.in; i++) {
    const size_t bit = L.offset + i * L.out + j0;
    __m256 w[kQ256];
    Expand256(uint32_t(Bits64(job.pos, bit)) & keep, uint32_t(Bits64(job.neg, bit)) & keep, w);
    for (int q = 0; q < kQ256; q++) _mm256_store_ps(packed + i * kPanel256 + 8 * q, w[q]);
  }
}

SUPSUP_AVX2 void Panel256(const Job& job, size_t r0, size_t r1, size_t j0, size_t cols, float* packed) {
  const float* w = nullptr;
  if (r1 - r0 > kRows256) {
    Pack256(job, j0, cols, packed);
    w = packed;
  }
  size_t r = r0;
  for (; r + kRows256 <= r1; r += kRows256) Tile256<kRows256>(job, r, j0, cols, w);
  switch (r1 - r) {
    case 5: Tile256<5>(job, r, j0, cols, w); break;
    case 4: Tile256<4>(job, r, j0, cols, w); break;
    case 3: Tile256<3>(job, r, j0, cols, w); break;
    case 2: Tile256<2>(job, r, j0, cols, w); break;
    case 1: Tile256<1>(job, r, j0, cols, w); break;
    default: break;
  }
}
#endif

// Rows of the batch per work item: the packed panel (in × 64 floats, ≤ 256 KiB for in ≤ 1024) is expanded
// once per item and reused by its 8 row tiles.
constexpr size_t kChunkRows = 48;

void RunLayer(const Job& job, size_t batch, Simd simd) {
  const Layer& L = *job.L;
#if SUPSUP_HAS_X86
  const size_t panel = simd == Simd::kAvx512 ? kPanel512 : simd == Simd::kAvx2 ? kPanel256 : 64;
#else
  const size_t panel = 64;
#endif
  const size_t panels = (L.out + panel - 1) / panel, chunks = (batch + kChunkRows - 1) / kChunkRows;
  const bool small = batch * L.in * L.out < (size_t(1) << 21);  // below ~2 M MACs a second thread costs more than it saves
  ParallelFor(panels * chunks, small, [&](int, size_t item) {
    const size_t p = item % panels, c = item / panels;
    const size_t j0 = p * panel, cols = std::min(panel, L.out - j0);
    const size_t r0 = c * kChunkRows, r1 = std::min(batch, r0 + kChunkRows);
#if SUPSUP_HAS_X86
    if (simd != Simd::kScalar) {
      thread_local std::vector<float> store;
      store.resize(L.in * panel + 16);
      float* packed = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(store.data()) + 63) & ~uintptr_t(63));
      if (simd == Simd::kAvx512) Panel512(job, r0, r1, j0, cols, packed);
      else Panel256(job, r0, r1, j0, cols, packed);
      return;
    }
#endif
    PanelScalar(job, r0, r1, j0, cols);
  });
}

void ForwardBits(const uint32_t* bank, size_t words, size_t slot, const uint32_t* signs, const std::vector<Layer>& layers,
                 const float* x, size_t batch, float* out) {
  // The task's ternary weights as two bit sets, padded by two zero words for Bits64. The scratch is kept per
  // thread between calls: a fresh large allocation per call costs page faults, which dominate a small batch.
  thread_local std::vector<uint32_t> pos, neg;
  thread_local std::vector<float> buf0, buf1;
  pos.resize(words + 2);
  neg.resize(words + 2);
  const uint32_t* m = bank + (slot / kLanes) * words * kLanes + slot % kLanes;
  // The task's words are 32 bytes apart (one per 8-slot block row): 315 KB of lines for LeNet 300-100, from DRAM
  // when the task was not used lately. Prefetching 8 KiB ahead keeps more lines in flight than the hardware
  // prefetcher does: batch 1 at k = 2500, random tasks, in process: 45.8 -> 38.6 us (2 KiB ahead: 41.2 us).
  constexpr size_t kAhead = 256;
  for (size_t j = 0; j < words; j++) {
    if (j % 2 == 0) __builtin_prefetch(m + std::min(j + kAhead, words - 1) * kLanes);
    const uint32_t keep = m[j * kLanes];
    pos[j] = keep & signs[j];
    neg[j] = keep & ~signs[j];
  }
  pos[words] = pos[words + 1] = neg[words] = neg[words + 1] = 0;
  size_t widest = 0;
  for (const Layer& L : layers) widest = std::max(widest, L.out);
  if (buf0.size() < batch * widest) {
    buf0.resize(batch * widest);
    buf1.resize(batch * widest);
  }
  const Simd simd = CurrentSimd();
  const float* a = x;
  for (size_t l = 0; l < layers.size(); l++) {
    float* z = l + 1 == layers.size() ? out : (l % 2 ? buf1.data() : buf0.data());
    RunLayer(Job{&layers[l], pos.data(), neg.data(), a, z}, batch, simd);
    a = z;
  }
}

Napi::Value JsForwardBits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t *bank, *signs;
  int32_t* sizes;
  float *scales, *x, *out;
  size_t bank_len, signs_len, nsizes, nscales, x_len, out_len, words, slot, batch;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Count(info[2], slot)) return Refuse(env, "slot must be a non-negative integer");
  if (!Typed(info[3], napi_uint32_array, signs, signs_len)) return Refuse(env, "signs must be a Uint32Array");
  if (!Typed(info[4], napi_int32_array, sizes, nsizes)) return Refuse(env, "sizes must be an Int32Array");
  if (!Typed(info[5], napi_float32_array, scales, nscales)) return Refuse(env, "scales must be a Float32Array");
  if (!Typed(info[6], napi_float32_array, x, x_len)) return Refuse(env, "x must be a Float32Array");
  if (!Count(info[7], batch)) return Refuse(env, "batch must be a non-negative integer");
  if (!Typed(info[8], napi_float32_array, out, out_len)) return Refuse(env, "out must be a Float32Array");
  if (bank_len / words / kLanes <= slot / kLanes) return Refuse(env, "slot is outside the bank");
  if (signs_len < words) return Refuse(env, "signs is shorter than words");
  if (nsizes < 2 || nscales != nsizes - 1) return Refuse(env, "sizes needs at least 2 entries and scales one per layer");
  std::vector<Layer> layers;
  size_t offset = 0;
  for (size_t l = 0; l + 1 < nsizes; l++) {
    if (sizes[l] <= 0 || sizes[l + 1] <= 0) return Refuse(env, "layer sizes must be positive");
    layers.push_back(Layer{size_t(sizes[l]), size_t(sizes[l + 1]), offset, scales[l], l + 2 < nsizes});
    offset += size_t(sizes[l]) * size_t(sizes[l + 1]);
  }
  if (offset > words * 32) return Refuse(env, "the layers have more weights than words * 32");
  if (x_len / layers.front().in < batch) return Refuse(env, "x is shorter than batch * sizes[0]");
  if (out_len / layers.back().out < batch) return Refuse(env, "out is shorter than batch * sizes[last]");
  if (batch > 0) ForwardBits(bank, words, slot, signs, layers, x, batch, out);
  return env.Undefined();
}

// IEEE operations, so every vector width gives the same bits as the scalar loop.
void NormalizeScalar(const float* x, size_t n, float mean, float std, float* out) {
  for (size_t i = 0; i < n; i++) out[i] = (x[i] - mean) / std;
}

#if SUPSUP_HAS_X86
SUPSUP_AVX2 void NormalizeAvx2(const float* x, size_t n, float mean, float std, float* out) {
  const __m256 m = _mm256_set1_ps(mean), s = _mm256_set1_ps(std);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), s));
  NormalizeScalar(x + i, n - i, mean, std, out + i);
}
#endif

// normalize(x, mean, std, out): out[i] = (x[i] − mean) / std, each step rounded to float32 as tfjs rounds it
// (a subtraction then a division, never contracted), over the first x.length entries of out. The given-task
// pass's input scaling: a vectorised loop instead of a JavaScript one (~0.1-0.2 ms at batch 128).
Napi::Value JsNormalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *x, *out;
  size_t n, out_len;
  if (!Typed(info[0], napi_float32_array, x, n)) return Refuse(env, "x must be a Float32Array");
  if (!info[1].IsNumber() || !info[2].IsNumber()) return Refuse(env, "mean and std must be numbers");
  if (!Typed(info[3], napi_float32_array, out, out_len) || out_len < n) return Refuse(env, "out must be a Float32Array at least as long as x");
  const float mean = info[1].As<Napi::Number>().FloatValue(), std = info[2].As<Napi::Number>().FloatValue();
#if SUPSUP_HAS_X86
  if (CurrentSimd() != Simd::kScalar) return NormalizeAvx2(x, n, mean, std, out), env.Undefined();
#endif
  NormalizeScalar(x, n, mean, std, out);
  return env.Undefined();
}

}  // namespace

void RegisterForwardBits(Napi::Env env, Napi::Object exports) {
  exports.Set("forwardBits", Napi::Function::New(env, JsForwardBits, "forwardBits"));
  exports.Set("normalize", Napi::Function::New(env, JsNormalize, "normalize"));
}

}  // namespace supsup
