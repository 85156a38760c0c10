// Per-task column sums of the input layer, and the term they add to one-vector scores (contract:
// ColumnSumKernels in src/core/kernels/column-sums.ts; reference: columnSumsTypescript there).
//
//   columnSums(bank, words, slots, signs, rows, cols, out)   out[p·cols + j] = Σ_{i < rows} M_{slots[p]}[i·cols + j] · (sign ? +1 : −1)
//   columnTerm(sums, cols, rows, coef, out)                   out[p] += Σ_j coef[j] · sums[rows[p]·cols + j]
//   columnTotals(sums, cols, rows, out)                       out[j] = Σ_p sums[rows[p]·cols + j]   (Int32Array, exact)
//
// columnSums reads the input layer's words of every block that holds a wanted slot once, adding each bit of
// the 8 (AVX2, scalar) or 16 (AVX-512: two blocks) slots to its column's counters; exact integers, so every
// path gives the same sums. columnTerm sums in float32, 8 or 16 lanes at a time (the order differs per path;
// the caller compares with a tolerance).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr size_t kLanes = 8;  // BLOCK_SLOTS

// Counters of one or two blocks: acc[col * lanes + l], for the first `weights` weights (rows · cols).
void SumsScalar(const uint32_t* block, const uint32_t* signs, size_t weights, size_t cols, int32_t* acc) {
  size_t col = 0;
  for (size_t w = 0; w < weights; w++) {
    const uint32_t bit = w & 31;
    const int32_t s = (signs[w >> 5] >> bit) & 1 ? 1 : -1;
    const uint32_t* x = block + (w >> 5) * kLanes;
    int32_t* a = acc + col * kLanes;
    for (size_t l = 0; l < kLanes; l++) a[l] += s * int32_t((x[l] >> bit) & 1);
    if (++col == cols) col = 0;
  }
}

#if SUPSUP_HAS_X86
SUPSUP_AVX2 void SumsAvx2(const uint32_t* block, const uint32_t* signs, size_t weights, size_t cols, int32_t* acc) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i sign[2] = {_mm256_set1_epi32(-1), one};
  size_t col = 0;
  for (size_t j = 0; j * 32 < weights; j++) {
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + j * kLanes));
    const uint32_t s = signs[j];
    const size_t bits = std::min<size_t>(32, weights - j * 32);
    for (size_t b = 0; b < bits; b++) {
      __m256i* a = reinterpret_cast<__m256i*>(acc + col * kLanes);
      const __m256i bit = _mm256_sign_epi32(_mm256_and_si256(x, one), sign[(s >> b) & 1]);
      _mm256_storeu_si256(a, _mm256_add_epi32(_mm256_loadu_si256(a), bit));
      x = _mm256_srli_epi32(x, 1);
      if (++col == cols) col = 0;
    }
  }
}

// Two blocks at once (lanes 0–7 the first, 8–15 the second): a masked add of ±1 per bit.
SUPSUP_AVX512 void SumsAvx512(const uint32_t* first, const uint32_t* second, const uint32_t* signs, size_t weights, size_t cols, int32_t* acc) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i sign[2] = {_mm512_set1_epi32(-1), one};
  size_t col = 0;
  for (size_t j = 0; j * 32 < weights; j++) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + j * kLanes));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(second + j * kLanes));
    __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const uint32_t s = signs[j];
    const size_t bits = std::min<size_t>(32, weights - j * 32);
    for (size_t b = 0; b < bits; b++) {
      int32_t* a = acc + col * 16;
      const __mmask16 set = _mm512_test_epi32_mask(x, one);
      const __m512i now = _mm512_loadu_si512(a);
      _mm512_storeu_si512(a, _mm512_mask_add_epi32(now, set, now, sign[(s >> b) & 1]));
      x = _mm512_srli_epi32(x, 1);
      if (++col == cols) col = 0;
    }
  }
}
#endif

void ColumnSums(const uint32_t* bank, size_t words, const int32_t* slots, size_t count, const uint32_t* signs, size_t rows,
                size_t cols, int16_t* out) {
  // The wanted slots by block; each work item counts one block (two on AVX-512) and writes its wanted slots.
  std::vector<std::pair<size_t, size_t>> wanted(count);  // (block, position)
  for (size_t p = 0; p < count; p++) wanted[p] = {size_t(slots[p]) / kLanes, p};
  std::sort(wanted.begin(), wanted.end());
  std::vector<size_t> blocks, starts;  // distinct blocks, and where each one's positions start in `wanted`
  for (size_t i = 0; i < count; i++) {
    if (i == 0 || wanted[i].first != wanted[i - 1].first) {
      blocks.push_back(wanted[i].first);
      starts.push_back(i);
    }
  }
  starts.push_back(count);
  const Simd simd = CurrentSimd();
  const size_t per_item = simd == Simd::kAvx512 ? 2 : 1, lanes = per_item * kLanes;
  const size_t items = (blocks.size() + per_item - 1) / per_item, weights = rows * cols;
  ParallelFor(items, items < 2, [&](int, size_t item) {
    std::vector<int32_t> acc(cols * lanes, 0);
    const size_t i0 = item * per_item, i1 = std::min(blocks.size(), i0 + per_item);
    const uint32_t* first = bank + blocks[i0] * words * kLanes;
#if SUPSUP_HAS_X86
    if (simd == Simd::kAvx512) {  // a lone last block stands in for the second too, whose sums are dropped
      const uint32_t* second = i1 > i0 + 1 ? bank + blocks[i0 + 1] * words * kLanes : first;
      SumsAvx512(first, second, signs, weights, cols, acc.data());
    } else if (simd == Simd::kAvx2) {
      SumsAvx2(first, signs, weights, cols, acc.data());
    } else
#endif
      SumsScalar(first, signs, weights, cols, acc.data());
    for (size_t i = i0; i < i1; i++) {
      for (size_t at = starts[i]; at < starts[i + 1]; at++) {
        const size_t p = wanted[at].second, lane = (i - i0) * kLanes + size_t(slots[p]) % kLanes;
        for (size_t j = 0; j < cols; j++) out[p * cols + j] = int16_t(acc[j * lanes + lane]);
      }
    }
  });
}

float TermScalar(const int16_t* s, const float* coef, size_t cols) {
  float sum = 0;
  for (size_t j = 0; j < cols; j++) sum += coef[j] * float(s[j]);
  return sum;
}

#if SUPSUP_HAS_X86
SUPSUP_AVX2 float TermAvx2(const int16_t* s, const float* coef, size_t cols) {
  __m256 acc = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 sv = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + j))));
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(coef + j), sv, acc);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  return sum + TermScalar(s + j, coef + j, cols - j);
}

SUPSUP_AVX512 float TermAvx512(const int16_t* s, const float* coef, size_t cols) {
  __m512 acc = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    const __m512 sv = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + j))));
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(coef + j), sv, acc);
  }
  return _mm512_reduce_add_ps(acc) + TermScalar(s + j, coef + j, cols - j);
}
#endif

void ColumnTerm(const int16_t* sums, size_t cols, const int32_t* rows, size_t count, const float* coef, float* out) {
  const Simd simd = CurrentSimd();
  for (size_t p = 0; p < count; p++) {
    const int16_t* s = sums + size_t(rows ? rows[p] : int32_t(p)) * cols;
#if SUPSUP_HAS_X86
    if (simd == Simd::kAvx512) out[p] += TermAvx512(s, coef, cols);
    else if (simd == Simd::kAvx2) out[p] += TermAvx2(s, coef, cols);
    else
#endif
      out[p] += TermScalar(s, coef, cols);
  }
}

// Exact integers, so one plain loop, vectorised by the compiler for each path, gives every path's result.
inline __attribute__((always_inline)) void TotalsBody(const int16_t* sums, size_t cols, const int32_t* rows, size_t count, int32_t* out) {
  std::fill(out, out + cols, 0);
  for (size_t p = 0; p < count; p++) {
    const int16_t* s = sums + size_t(rows[p]) * cols;
    for (size_t j = 0; j < cols; j++) out[j] += s[j];
  }
}

void TotalsScalar(const int16_t* sums, size_t cols, const int32_t* rows, size_t count, int32_t* out) { TotalsBody(sums, cols, rows, count, out); }
#if SUPSUP_HAS_X86
SUPSUP_AVX2 void TotalsAvx2(const int16_t* sums, size_t cols, const int32_t* rows, size_t count, int32_t* out) { TotalsBody(sums, cols, rows, count, out); }
#endif

void ColumnTotals(const int16_t* sums, size_t cols, const int32_t* rows, size_t count, int32_t* out) {
#if SUPSUP_HAS_X86
  if (CurrentSimd() != Simd::kScalar) return TotalsAvx2(sums, cols, rows, count, out);
#endif
  TotalsScalar(sums, cols, rows, count, out);
}

Napi::Value JsColumnSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t *bank, *signs;
  int32_t* slots;
  int16_t* out;
  size_t bank_len, words, slots_len, signs_len, rows, cols, out_len;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Typed(info[2], napi_int32_array, slots, slots_len)) return Refuse(env, "slots must be an Int32Array");
  if (!Typed(info[3], napi_uint32_array, signs, signs_len)) return Refuse(env, "signs must be a Uint32Array");
  if (!Count(info[4], rows) || !Count(info[5], cols) || cols == 0) return Refuse(env, "rows and cols must be integers, cols positive");
  if (!Typed(info[6], napi_int16_array, out, out_len)) return Refuse(env, "out must be an Int16Array");
  if (bank_len % (words * kLanes) != 0) return Refuse(env, "bank length is not a multiple of words * 8");
  if (rows * cols > words * 32 || signs_len < words) return Refuse(env, "rows * cols weights do not fit the words");
  if (rows > 32767) return Refuse(env, "rows must be at most 32767 (the sums are int16)");
  if (out_len / cols < slots_len) return Refuse(env, "out is shorter than slots * cols");
  const size_t capacity = bank_len / words;
  for (size_t p = 0; p < slots_len; p++)
    if (slots[p] < 0 || size_t(slots[p]) >= capacity) return Refuse(env, "a slot is outside the bank");
  ColumnSums(bank, words, slots, slots_len, signs, rows, cols, out);
  return env.Undefined();
}

Napi::Value JsColumnTerm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int16_t* sums;
  int32_t* rows = nullptr;
  float *coef, *out;
  size_t sums_len, cols, rows_len = 0, coef_len, out_len;
  if (!Typed(info[0], napi_int16_array, sums, sums_len)) return Refuse(env, "sums must be an Int16Array");
  if (!Count(info[1], cols) || cols == 0) return Refuse(env, "cols must be a positive integer");
  if (!info[2].IsUndefined() && !Typed(info[2], napi_int32_array, rows, rows_len)) return Refuse(env, "rows must be an Int32Array or undefined");
  if (!Typed(info[3], napi_float32_array, coef, coef_len) || coef_len < cols) return Refuse(env, "coef must be a Float32Array of cols values");
  if (!Typed(info[4], napi_float32_array, out, out_len)) return Refuse(env, "out must be a Float32Array");
  const size_t stored = sums_len / cols, count = rows ? rows_len : std::min(out_len, stored);
  if (out_len < count) return Refuse(env, "out is shorter than rows");
  for (size_t p = 0; rows && p < count; p++)
    if (rows[p] < 0 || size_t(rows[p]) >= stored) return Refuse(env, "a row is outside the sums");
  ColumnTerm(sums, cols, rows, count, coef, out);
  return env.Undefined();
}

Napi::Value JsColumnTotals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int16_t* sums;
  int32_t *rows, *out;
  size_t sums_len, cols, rows_len, out_len;
  if (!Typed(info[0], napi_int16_array, sums, sums_len)) return Refuse(env, "sums must be an Int16Array");
  if (!Count(info[1], cols) || cols == 0) return Refuse(env, "cols must be a positive integer");
  if (!Typed(info[2], napi_int32_array, rows, rows_len)) return Refuse(env, "rows must be an Int32Array");
  if (!Typed(info[3], napi_int32_array, out, out_len) || out_len < cols) return Refuse(env, "out must be an Int32Array of cols values");
  if (rows_len > 65535) return Refuse(env, "at most 65535 rows (the totals are int32)");
  for (size_t p = 0; p < rows_len; p++)
    if (rows[p] < 0 || size_t(rows[p]) >= sums_len / cols) return Refuse(env, "a row is outside the sums");
  ColumnTotals(sums, cols, rows, rows_len, out);
  return env.Undefined();
}

}  // namespace

void RegisterColumnSums(Napi::Env env, Napi::Object exports) {
  exports.Set("columnSums", Napi::Function::New(env, JsColumnSums, "columnSums"));
  exports.Set("columnTerm", Napi::Function::New(env, JsColumnTerm, "columnTerm"));
  exports.Set("columnTotals", Napi::Function::New(env, JsColumnTotals, "columnTotals"));
}

}  // namespace supsup
