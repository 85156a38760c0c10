// Scores for many vectors in one pass over the bank (contract: `scores` in src/core/kernels/mask-kernels.ts).
//
//   scoresMulti(bank, words, blocks, v, examples, out)
//
// The single-vector kernel (supsup_kernels.cc) puts 8 tasks in the SIMD lanes and looks up one vector's
// partial sums per lane. For R vectors this one puts the vectors in the lanes instead: for each 4-bit group of
// a mask word, a table of 16 entries, each entry a row of 16 (AVX-512) or 8 (AVX2) vectors' partial sums
// (entry n = Σ_i∈n v_lane[w + i]). One mask word of one task is then 8 table-row loads added into that task's
// accumulator, for all the vectors in the lanes at once: no permutes, no per-vector work per task. Tables
// cost ~ 8 × 16 rows per word, shared by every task, so the cost per vector falls as R grows (up to a lane
// width per pass; more vectors take more passes).
//
// Work split: the weight dimension in tiles of kTileWords words; tiles are handed out in up to 16 contiguous
// groups (like `scores`), each group summing into its own slots × lanes buffer, added up in group order at
// the end: same input, same bits, whatever thread ran what.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;         // BLOCK_SLOTS: tasks per interleaved block
constexpr size_t kTileWords = 4;  // 4 words × 8 groups × 16 entries × 16 lanes × 4 B = 32 KiB of tables
constexpr int kEntries = 16, kGroups = 8;

// Where the vectors' values come from. Fill writes vt[(jj * 32 + b) * lanes + lane] = value of weight
// (j0 + jj) * 32 + b in vector vec0 + lane, for jj < n, and 0 for lanes past `count`.
struct DenseSource {  // v given: examples × words · 32 floats
  const float* v;
  size_t words;
  void Fill(size_t vec0, size_t count, size_t lanes, size_t j0, size_t n, float* vt) const {
    for (size_t w = 0; w < n * 32; w++)
      for (size_t lane = 0; lane < lanes; lane++)
        vt[w * lanes + lane] = lane < count ? v[(vec0 + lane) * words * 32 + j0 * 32 + w] : 0.0f;
  }
};

// v_e(w) = (a_l[e][i] · δ_l[e][j]) · W(w) for weight w = (l, i, j), never materialised: per-example scores
// from one forward/backward pass, with the layer inputs a and deltas δ already transposed to [i][lane] and
// [j][lane] for this pass's lanes. W(w) = ±c_l from the sign bits. Zero past P.
struct OuterSource {
  struct Layer { size_t in, out, offset; float scale; const float* a; const float* d; };
  std::vector<Layer> layers;
  const uint32_t* signs;
  size_t weights;  // P
  void Fill(size_t, size_t, size_t lanes, size_t j0, size_t n, float* vt) const {
    size_t w = j0 * 32, l = 0;
    while (l < layers.size() && w >= layers[l].offset + layers[l].in * layers[l].out) l++;
    for (size_t k = 0; k < n * 32; k++, w++) {
      float* dst = vt + k * lanes;
      while (l < layers.size() && w >= layers[l].offset + layers[l].in * layers[l].out) l++;
      if (w >= weights || l == layers.size()) {
        std::fill(dst, dst + lanes, 0.0f);
        continue;
      }
      const Layer& L = layers[l];
      const size_t i = (w - L.offset) / L.out, j = (w - L.offset) % L.out;
      const float weight = (signs[w >> 5] >> (w & 31)) & 1 ? L.scale : -L.scale;
      const float* a = L.a + i * lanes;
      const float* d = L.d + j * lanes;
      for (size_t lane = 0; lane < lanes; lane++) dst[lane] = (a[lane] * d[lane]) * weight;
    }
  }
};

// tables[((jj * 8 + g) * 16 + n) * lanes + lane] = Σ_{i < 4, bit i of n} vt[(jj * 32 + 4g + i) * lanes + lane].
void BuildTables(const float* vt, size_t lanes, size_t n, float* tables) {
  for (size_t jj = 0; jj < n; jj++) {
    for (int g = 0; g < kGroups; g++) {
      float* e = tables + (jj * kGroups + g) * kEntries * lanes;
      const float* x = vt + (jj * 32 + 4 * g) * lanes;
      std::fill(e, e + lanes, 0.0f);
      for (int i = 0; i < 4; i++) std::copy(x + i * lanes, x + (i + 1) * lanes, e + (size_t(1) << i) * lanes);
      // entry n = entry (n without its top bit) + entry (top bit alone), building up from the single bits
      for (int top = 1; top < 4; top++)
        for (int low = 1; low < (1 << top); low++)
          for (size_t lane = 0; lane < lanes; lane++)
            e[size_t((1 << top) | low) * lanes + lane] = e[size_t(low) * lanes + lane] + e[(size_t(1) << top) * lanes + lane];
    }
  }
}

// acc[s * lanes + lane] += Σ_jj Σ_g table row of slot s's word jj, for the 8 slots of one block's chunk.
void BlockScalar(const uint32_t* chunk, size_t n, const float* tables, size_t lanes, float* acc) {
  for (size_t jj = 0; jj < n; jj++) {
    const float* t = tables + jj * kGroups * kEntries * lanes;
    for (int s = 0; s < kLanes; s++) {
      const uint32_t x = chunk[jj * kLanes + s];
      for (int g = 0; g < kGroups; g++) {
        const float* row = t + (g * kEntries + ((x >> (4 * g)) & 15)) * lanes;
        for (size_t lane = 0; lane < lanes; lane++) acc[s * lanes + lane] += row[lane];
      }
    }
  }
}

#if SUPSUP_HAS_X86
// Byte offset of group g's row for word x, with rows of (1 << kShift) bytes.
template <int kShift>
inline size_t RowOffset(uint32_t x, int g) {
  const int s = 4 * g - kShift;
  return (s >= 0 ? x >> s : x << -s) & (15u << kShift);
}

SUPSUP_AVX512 void Block512(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  __m512 a[kLanes];
  for (int s = 0; s < kLanes; s++) a[s] = _mm512_loadu_ps(acc + 16 * s);
  for (size_t jj = 0; jj < n; jj++) {
    const char* t = reinterpret_cast<const char*>(tables + jj * kGroups * kEntries * 16);
    for (int s = 0; s < kLanes; s++) {
      const uint32_t x = chunk[jj * kLanes + s];
      // two chains per slot so the adds of one word overlap
      __m512 p = _mm512_load_ps(reinterpret_cast<const float*>(t + RowOffset<6>(x, 0)));
      __m512 q = _mm512_load_ps(reinterpret_cast<const float*>(t + 1024 + RowOffset<6>(x, 1)));
      for (int g = 2; g < kGroups; g += 2) {
        p = _mm512_add_ps(p, _mm512_load_ps(reinterpret_cast<const float*>(t + 1024 * g + RowOffset<6>(x, g))));
        q = _mm512_add_ps(q, _mm512_load_ps(reinterpret_cast<const float*>(t + 1024 * (g + 1) + RowOffset<6>(x, g + 1))));
      }
      a[s] = _mm512_add_ps(a[s], _mm512_add_ps(p, q));
    }
  }
  for (int s = 0; s < kLanes; s++) _mm512_storeu_ps(acc + 16 * s, a[s]);
}

SUPSUP_AVX2 void Block256(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  __m256 a[kLanes];
  for (int s = 0; s < kLanes; s++) a[s] = _mm256_loadu_ps(acc + 8 * s);
  for (size_t jj = 0; jj < n; jj++) {
    const char* t = reinterpret_cast<const char*>(tables + jj * kGroups * kEntries * 8);
    for (int s = 0; s < kLanes; s++) {
      const uint32_t x = chunk[jj * kLanes + s];
      __m256 p = _mm256_load_ps(reinterpret_cast<const float*>(t + RowOffset<5>(x, 0)));
      __m256 q = _mm256_load_ps(reinterpret_cast<const float*>(t + 512 + RowOffset<5>(x, 1)));
      for (int g = 2; g < kGroups; g += 2) {
        p = _mm256_add_ps(p, _mm256_load_ps(reinterpret_cast<const float*>(t + 512 * g + RowOffset<5>(x, g))));
        q = _mm256_add_ps(q, _mm256_load_ps(reinterpret_cast<const float*>(t + 512 * (g + 1) + RowOffset<5>(x, g + 1))));
      }
      a[s] = _mm256_add_ps(a[s], _mm256_add_ps(p, q));
    }
  }
  for (int s = 0; s < kLanes; s++) _mm256_storeu_ps(acc + 8 * s, a[s]);
}
#endif

// One pass over the bank for vectors [vec0, vec0 + count), count ≤ lanes.
template <class Source>
void Pass(const uint32_t* bank, size_t words, size_t blocks, const Source& source, size_t vec0, size_t count, size_t lanes,
          Simd simd, float* out) {
  const size_t slots = blocks * kLanes, tiles = (words + kTileWords - 1) / kTileWords;
  const size_t groups = std::min<size_t>(tiles, 16), per_group = (tiles + groups - 1) / groups;
  std::vector<float> partial(groups * slots * lanes, 0.0f);
  ParallelFor(groups, words * blocks < 512, [&](int, size_t group) {
    thread_local std::vector<float> store, values;
    store.resize(kTileWords * kGroups * kEntries * lanes + 16);
    values.resize(kTileWords * 32 * lanes);
    float* tables = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(store.data()) + 63) & ~uintptr_t(63));
    float* acc = &partial[group * slots * lanes];
    for (size_t tile = group * per_group; tile < std::min(tiles, (group + 1) * per_group); tile++) {
      const size_t j0 = tile * kTileWords, n = std::min(kTileWords, words - j0);
      source.Fill(vec0, count, lanes, j0, n, values.data());
      BuildTables(values.data(), lanes, n, tables);
      for (size_t b = 0; b < blocks; b++) {
        const uint32_t* chunk = bank + (b * words + j0) * kLanes;
        float* a = acc + b * kLanes * lanes;
#if SUPSUP_HAS_X86
        if (b + 8 < blocks) { _mm_prefetch(reinterpret_cast<const char*>(chunk + 8 * words * kLanes), _MM_HINT_T0); _mm_prefetch(reinterpret_cast<const char*>(chunk + 8 * words * kLanes + 16), _MM_HINT_T0); }
        if (simd == Simd::kAvx512 && lanes == 16) { Block512(chunk, n, tables, a); continue; }
        if (simd != Simd::kScalar && lanes == 8) { Block256(chunk, n, tables, a); continue; }
#endif
        BlockScalar(chunk, n, tables, lanes, a);
      }
    }
  });
  for (size_t lane = 0; lane < count; lane++) {
    float* o = out + (vec0 + lane) * slots;
    for (size_t i = 0; i < slots; i++) {
      float sum = 0;
      for (size_t g = 0; g < groups; g++) sum += partial[(g * slots + i) * lanes + lane];
      o[i] = sum;
    }
  }
}

// Calls pass(vec0, count, lanes) for consecutive groups of vectors: 16 lanes where AVX-512 runs and more than
// 8 vectors are left, else 8 (AVX2, scalar, or a short tail).
template <class F>
void ForLaneGroups(size_t examples, Simd simd, F pass) {
  for (size_t vec0 = 0; vec0 < examples;) {
    const size_t left = examples - vec0;
    const size_t lanes = simd == Simd::kAvx512 && left > 8 ? 16 : 8, count = std::min(left, lanes);
    pass(vec0, count, lanes);
    vec0 += count;
  }
}

void ScoresMulti(const uint32_t* bank, size_t words, size_t blocks, const float* v, size_t examples, float* out) {
  if (blocks == 0 || examples == 0) return;
  const Simd simd = CurrentSimd();
  const DenseSource source{v, words};
  ForLaneGroups(examples, simd, [&](size_t vec0, size_t count, size_t lanes) {
    Pass(bank, words, blocks, source, vec0, count, lanes, simd, out);
  });
}

// sizes: [n_0 .. n_L]; acts: per layer l, examples × n_l (layer inputs); deltas: per layer, examples × n_{l+1}.
void ScoresOuter(const uint32_t* bank, size_t words, size_t blocks, const uint32_t* signs, const std::vector<size_t>& sizes,
                 const float* scales, const float* acts, const float* deltas, size_t examples, float* out) {
  if (blocks == 0 || examples == 0) return;
  const Simd simd = CurrentSimd();
  ForLaneGroups(examples, simd, [&](size_t vec0, size_t count, size_t lanes) {
    OuterSource source;
    source.signs = signs;
    std::vector<std::vector<float>> transposed;  // [i][lane] copies of this group's a and δ, zero past count
    const auto transpose = [&](const float* m, size_t width) {
      transposed.emplace_back(width * lanes, 0.0f);
      for (size_t lane = 0; lane < count; lane++)
        for (size_t i = 0; i < width; i++) transposed.back()[i * lanes + lane] = m[(vec0 + lane) * width + i];
      return transposed.back().data();
    };
    transposed.reserve(2 * (sizes.size() - 1));
    size_t offset = 0, a_off = 0, d_off = 0;
    for (size_t l = 0; l + 1 < sizes.size(); l++) {
      const size_t in = sizes[l], out_l = sizes[l + 1];
      const float* a = transpose(acts + a_off, in);
      const float* d = transpose(deltas + d_off, out_l);
      source.layers.push_back({in, out_l, offset, scales[l], a, d});
      offset += in * out_l;
      a_off += examples * in;
      d_off += examples * out_l;
    }
    source.weights = offset;
    Pass(bank, words, blocks, source, vec0, count, lanes, simd, out);
  });
}

Napi::Value JsScoresMulti(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t* bank;
  float *v, *out;
  size_t bank_len, v_len, out_len, words, blocks, examples;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Count(info[2], blocks)) return Refuse(env, "blocks must be a non-negative integer");
  if (!Typed(info[3], napi_float32_array, v, v_len)) return Refuse(env, "v must be a Float32Array");
  if (!Count(info[4], examples)) return Refuse(env, "examples must be a non-negative integer");
  if (!Typed(info[5], napi_float32_array, out, out_len)) return Refuse(env, "out must be a Float32Array");
  if (bank_len / words / kLanes < blocks) return Refuse(env, "bank is shorter than blocks * words * 8");
  if (v_len / words / 32 < examples) return Refuse(env, "v is shorter than examples * words * 32");
  if (blocks && out_len / blocks / kLanes < examples) return Refuse(env, "out is shorter than examples * blocks * 8");
  ScoresMulti(bank, words, blocks, v, examples, out);
  return env.Undefined();
}

Napi::Value JsScoresOuter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t *bank, *signs;
  int32_t* sizes_in;
  float *scales, *acts, *deltas, *out;
  size_t bank_len, signs_len, nsizes, nscales, acts_len, deltas_len, out_len, words, blocks, examples;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Count(info[2], blocks)) return Refuse(env, "blocks must be a non-negative integer");
  if (!Typed(info[3], napi_uint32_array, signs, signs_len)) return Refuse(env, "signs must be a Uint32Array");
  if (!Typed(info[4], napi_int32_array, sizes_in, nsizes)) return Refuse(env, "sizes must be an Int32Array");
  if (!Typed(info[5], napi_float32_array, scales, nscales)) return Refuse(env, "scales must be a Float32Array");
  if (!Typed(info[6], napi_float32_array, acts, acts_len)) return Refuse(env, "acts must be a Float32Array");
  if (!Typed(info[7], napi_float32_array, deltas, deltas_len)) return Refuse(env, "deltas must be a Float32Array");
  if (!Count(info[8], examples)) return Refuse(env, "examples must be a non-negative integer");
  if (!Typed(info[9], napi_float32_array, out, out_len)) return Refuse(env, "out must be a Float32Array");
  if (bank_len / words / kLanes < blocks) return Refuse(env, "bank is shorter than blocks * words * 8");
  if (signs_len < words) return Refuse(env, "signs is shorter than words");
  if (nsizes < 2 || nscales != nsizes - 1) return Refuse(env, "sizes needs at least 2 entries and scales one per layer");
  std::vector<size_t> sizes;
  size_t weights = 0, acts_need = 0, deltas_need = 0;
  for (size_t l = 0; l < nsizes; l++) {
    if (sizes_in[l] <= 0) return Refuse(env, "layer sizes must be positive");
    sizes.push_back(size_t(sizes_in[l]));
  }
  for (size_t l = 0; l + 1 < nsizes; l++) {
    weights += sizes[l] * sizes[l + 1];
    acts_need += examples * sizes[l];
    deltas_need += examples * sizes[l + 1];
  }
  if (weights > words * 32) return Refuse(env, "the layers have more weights than words * 32");
  if (acts_len < acts_need) return Refuse(env, "acts is shorter than examples * (n_0 + ... + n_{L-1})");
  if (deltas_len < deltas_need) return Refuse(env, "deltas is shorter than examples * (n_1 + ... + n_L)");
  if (blocks && out_len / blocks / kLanes < examples) return Refuse(env, "out is shorter than examples * blocks * 8");
  ScoresOuter(bank, words, blocks, signs, sizes, scales, acts, deltas, examples, out);
  return env.Undefined();
}

}  // namespace

void RegisterScoresMulti(Napi::Env env, Napi::Object exports) {
  exports.Set("scoresMulti", Napi::Function::New(env, JsScoresMulti, "scoresMulti"));
  exports.Set("scoresOuter", Napi::Function::New(env, JsScoresOuter, "scoresOuter"));
}

}  // namespace supsup
