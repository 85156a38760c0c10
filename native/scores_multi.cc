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

// Where the vectors' values come from. Fill writes vt[(jj * 32 + b) * lanes + lane] = value of weight
// (j0 + jj) * 32 + b in vector vec0 + lane, for jj < n, and 0 for lanes past `count`.
struct DenseSource {  // v given: examples × words · 32 floats
  const float* v;
  size_t words;
  void Fill(size_t vec0, size_t count, size_t lanes, size_t j0, size_t n, float* vt) const {
    for (size_t lane = 0; lane < lanes; lane++) {  // one vector's run at a time: a sequential read
      const float* src = lane < count ? v + (vec0 + lane) * words * 32 + j0 * 32 : nullptr;
      for (size_t w = 0; w < n * 32; w++) vt[w * lanes + lane] = src ? src[w] : 0.0f;
    }
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
    // (l, i, j) of weight w, found once and then stepped along (a division per weight cost ~0.5 of a bank pass)
    size_t w = j0 * 32, l = 0, i = 0, j = 0;
    while (l < layers.size() && w >= layers[l].offset + layers[l].in * layers[l].out) l++;
    if (l < layers.size()) i = (w - layers[l].offset) / layers[l].out, j = (w - layers[l].offset) % layers[l].out;
    for (size_t k = 0; k < n * 32; k++, w++) {
      float* dst = vt + k * lanes;
      if (w >= weights || l == layers.size()) {
        std::fill(dst, dst + lanes, 0.0f);
        continue;
      }
      const Layer& L = layers[l];
      const float weight = (signs[w >> 5] >> (w & 31)) & 1 ? L.scale : -L.scale;
      const float* a = L.a + i * lanes;
      const float* d = L.d + j * lanes;
      for (size_t lane = 0; lane < lanes; lane++) dst[lane] = (a[lane] * d[lane]) * weight;
      if (++j == L.out && (j = 0, ++i == L.in)) i = 0, l++;
    }
  }
};

// Lookup groups. Each group of kBits weights of a word gets a table of 2^kBits entries, each entry a row of
// `lanes` partial sums (entry n = Σ_{i∈n} v_lane[w + i]); one mask word of one task is then 32 / kBits row loads
// added into that task's accumulator, for all the vectors at once. 8-bit groups halve the loads per word
// against 4-bit ones, but a word's tables are 16 × larger (64 KiB for 16 lanes, built once per word and shared
// by every task), so they pay only on a large bank (kByteGroupSlots).
constexpr size_t kByteGroupSlots = 512;

template <int kBits>
struct Layout {
  static constexpr int kGroups = 32 / kBits, kEntries = 1 << kBits;
  // words per tile: 4-bit tables 4 words × 8 KiB = 32 KiB for 16 lanes (L1); 8-bit tables 2 words × 64 KiB
  // (L2), measured faster than 1 word (a block's chunk is then one whole cache line)
  static constexpr size_t kTileWords = kBits == 4 ? 4 : 2;
  static size_t TableFloats(size_t lanes) { return size_t(kGroups) * kEntries * lanes; }  // per word
};

// tables[((jj * G + g) * E + n) * lanes + lane] = Σ_{i < kBits, bit i of n} vt[(jj * 32 + kBits·g + i) * lanes + lane].
// An entry is lo[n & 15] + hi[n >> 4] (each the sum of its set bits in ascending order), hi = 0 for 4-bit groups.
template <int kBits>
void BuildTables(const float* vt, size_t lanes, size_t n, float* tables) {
  using L = Layout<kBits>;
  std::vector<float> lo(16 * lanes), hi(16 * lanes);
  const auto subsets = [lanes](const float* x, float* e) {  // e[m] = Σ of x[i] for bit i of m, 4 bits
    std::fill(e, e + lanes, 0.0f);
    for (int m = 1; m < 16; m++) {
      const int top = 31 - __builtin_clz(unsigned(m)), low = m & ~(1 << top);
      for (size_t lane = 0; lane < lanes; lane++) e[m * lanes + lane] = e[low * lanes + lane] + x[top * lanes + lane];
    }
  };
  for (size_t jj = 0; jj < n; jj++) {
    for (int g = 0; g < L::kGroups; g++) {
      const float* x = vt + (jj * 32 + size_t(kBits) * g) * lanes;
      float* e = tables + (jj * L::kGroups + g) * L::kEntries * lanes;
      subsets(x, lo.data());
      if (kBits == 4) {
        std::copy(lo.begin(), lo.end(), e);
        continue;
      }
      subsets(x + 4 * lanes, hi.data());
      for (int h = 0; h < 16; h++)
        for (int l = 0; l < 16; l++)
          for (size_t lane = 0; lane < lanes; lane++) e[(h * 16 + l) * lanes + lane] = lo[l * lanes + lane] + hi[h * lanes + lane];
    }
  }
}

// acc[s * lanes + lane] += Σ_jj (Σ over even groups + Σ over odd groups) of slot s's rows, for one block's chunk
// (the SIMD paths' order, so every level sums alike).
template <int kBits>
void BlockScalar(const uint32_t* chunk, size_t n, const float* tables, size_t lanes, float* acc) {
  using L = Layout<kBits>;
  for (size_t jj = 0; jj < n; jj++) {
    const float* t = tables + jj * L::TableFloats(lanes);
    for (int s = 0; s < kLanes; s++) {
      const uint32_t x = chunk[jj * kLanes + s];
      const auto row = [&](int g) { return t + (g * L::kEntries + ((x >> (kBits * g)) & (L::kEntries - 1))) * lanes; };
      for (size_t lane = 0; lane < lanes; lane++) {
        float p = row(0)[lane], q = row(1)[lane];
        for (int g = 2; g < L::kGroups; g += 2) {
          p += row(g)[lane];
          q += row(g + 1)[lane];
        }
        acc[s * lanes + lane] += p + q;
      }
    }
  }
}

#if SUPSUP_HAS_X86
// Byte offset of group g's row for word x, with rows of (1 << kShift) bytes.
template <int kBits, int kShift>
inline size_t RowOffset(uint32_t x, int g) {
  const int s = kBits * g - kShift;
  return (s >= 0 ? x >> s : x << -s) & (((1u << kBits) - 1) << kShift);
}

// The 16 (AVX-512) or 8 (AVX2) lanes in one register; Vec wraps the intrinsics. The generic bodies below are
// always inlined into functions that carry the target (no vector crosses a call), so GCC's ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"
struct Vec512 {
  using T = __m512;
  static constexpr int kShift = 6;
  static SUPSUP_AVX512 T Load(const char* p) { return _mm512_load_ps(reinterpret_cast<const float*>(p)); }
  static SUPSUP_AVX512 T LoadU(const float* p) { return _mm512_loadu_ps(p); }
  static SUPSUP_AVX512 void StoreU(float* p, T v) { _mm512_storeu_ps(p, v); }
  static SUPSUP_AVX512 void Store(float* p, T v) { _mm512_store_ps(p, v); }
  static SUPSUP_AVX512 T Add(T a, T b) { return _mm512_add_ps(a, b); }
  static SUPSUP_AVX512 T Zero() { return _mm512_setzero_ps(); }
};
struct Vec256 {
  using T = __m256;
  static constexpr int kShift = 5;
  static SUPSUP_AVX2 T Load(const char* p) { return _mm256_load_ps(reinterpret_cast<const float*>(p)); }
  static SUPSUP_AVX2 T LoadU(const float* p) { return _mm256_loadu_ps(p); }
  static SUPSUP_AVX2 void StoreU(float* p, T v) { _mm256_storeu_ps(p, v); }
  static SUPSUP_AVX2 void Store(float* p, T v) { _mm256_store_ps(p, v); }
  static SUPSUP_AVX2 T Add(T a, T b) { return _mm256_add_ps(a, b); }
  static SUPSUP_AVX2 T Zero() { return _mm256_setzero_ps(); }
};

// Two chains per slot (even and odd groups) so the adds of one word overlap; the 8 slots' accumulators stay in
// registers over the tile.
template <class V, int kBits>
inline __attribute__((always_inline)) void BlockSimd(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  using L = Layout<kBits>;
  constexpr size_t kGroupBytes = size_t(L::kEntries) << V::kShift, kLanesV = size_t(1) << (V::kShift - 2);
  typename V::T a[kLanes];
  for (int s = 0; s < kLanes; s++) a[s] = V::LoadU(acc + kLanesV * s);
  for (size_t jj = 0; jj < n; jj++) {
    const char* t = reinterpret_cast<const char*>(tables + jj * L::TableFloats(kLanesV));
#pragma GCC unroll 8
    for (int s = 0; s < kLanes; s++) {
      const uint32_t x = chunk[jj * kLanes + s];
      typename V::T p = V::Load(t + RowOffset<kBits, V::kShift>(x, 0));
      typename V::T q = V::Load(t + kGroupBytes + RowOffset<kBits, V::kShift>(x, 1));
#pragma GCC unroll 8
      for (int g = 2; g < L::kGroups; g += 2) {
        p = V::Add(p, V::Load(t + kGroupBytes * g + RowOffset<kBits, V::kShift>(x, g)));
        q = V::Add(q, V::Load(t + kGroupBytes * (g + 1) + RowOffset<kBits, V::kShift>(x, g + 1)));
      }
      a[s] = V::Add(a[s], V::Add(p, q));
    }
  }
  for (int s = 0; s < kLanes; s++) V::StoreU(acc + kLanesV * s, a[s]);
}

template <int kBits>
SUPSUP_AVX512 void Block512(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  BlockSimd<Vec512, kBits>(chunk, n, tables, acc);
}
template <int kBits>
SUPSUP_AVX2 void Block256(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  BlockSimd<Vec256, kBits>(chunk, n, tables, acc);
}

// out[m] = Σ of y[i] for bit i of m (4 bits, ascending), each y[i] a row of lanes.
template <class V>
inline __attribute__((always_inline)) void Subsets(const float* y, typename V::T* out) {
  constexpr size_t kLanesV = size_t(1) << (V::kShift - 2);
  out[0] = V::Zero();
  for (int m = 1; m < 16; m++) {
    const int top = 31 - __builtin_clz(unsigned(m)), low = m & ~(1 << top);
    out[m] = V::LoadU(y + top * kLanesV);
    if (low) out[m] = V::Add(out[low], out[m]);
  }
}

// BuildTables in registers: lo[16] of a group's low 4 bits, then each 8-bit entry lo[l] + hi[h] stored as it is
// made (no reloads of fresh stores). Same sums in the same order as the portable build.
template <class V, int kBits>
inline __attribute__((always_inline)) void BuildSimd(const float* vt, size_t n, float* tables) {
  using L = Layout<kBits>;
  constexpr size_t kLanesV = size_t(1) << (V::kShift - 2);
  for (size_t jj = 0; jj < n; jj++) {
    for (int g = 0; g < L::kGroups; g++) {
      const float* x = vt + (jj * 32 + size_t(kBits) * g) * kLanesV;
      float* e = tables + (jj * L::kGroups + g) * L::kEntries * kLanesV;
      typename V::T lo[16], hi[16];
      Subsets<V>(x, lo);
      if (kBits == 4) {
        for (int m = 0; m < 16; m++) V::Store(e + m * kLanesV, lo[m]);
        continue;
      }
      Subsets<V>(x + 4 * kLanesV, hi);
      for (int l = 0; l < 16; l++) V::Store(e + l * kLanesV, lo[l]);
      for (int h = 1; h < 16; h++) {
        V::Store(e + h * 16 * kLanesV, hi[h]);
        for (int l = 1; l < 16; l++) V::Store(e + (h * 16 + l) * kLanesV, V::Add(lo[l], hi[h]));
      }
    }
  }
}
template <int kBits>
SUPSUP_AVX512 void BuildSimd512(const float* vt, size_t n, float* tables) { BuildSimd<Vec512, kBits>(vt, n, tables); }
template <int kBits>
SUPSUP_AVX2 void BuildSimd256(const float* vt, size_t n, float* tables) { BuildSimd<Vec256, kBits>(vt, n, tables); }
#endif

// One pass over the bank for vectors [vec0, vec0 + count), count ≤ lanes, with kBits-bit lookup groups.
template <int kBits, class Source>
void Pass(const uint32_t* bank, size_t words, size_t blocks, const Source& source, size_t vec0, size_t count, size_t lanes,
          Simd simd, float* out) {
  using L = Layout<kBits>;
  const size_t slots = blocks * kLanes, tiles = (words + L::kTileWords - 1) / L::kTileWords;
  const size_t groups = std::min<size_t>(tiles, 16), per_group = (tiles + groups - 1) / groups;
  std::vector<float> partial(groups * slots * lanes, 0.0f);
  ParallelFor(groups, words * blocks < 512, [&](int, size_t group) {
    thread_local std::vector<float> store, values;
    store.resize(L::kTileWords * L::TableFloats(lanes) + 16);
    values.resize(L::kTileWords * 32 * lanes);
    float* tables = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(store.data()) + 63) & ~uintptr_t(63));
    float* acc = &partial[group * slots * lanes];
    for (size_t tile = group * per_group; tile < std::min(tiles, (group + 1) * per_group); tile++) {
      const size_t j0 = tile * L::kTileWords, n = std::min(L::kTileWords, words - j0);
      source.Fill(vec0, count, lanes, j0, n, values.data());
#if SUPSUP_HAS_X86
      if (simd == Simd::kAvx512 && lanes == 16) BuildSimd512<kBits>(values.data(), n, tables);
      else if (simd != Simd::kScalar && lanes == 8) BuildSimd256<kBits>(values.data(), n, tables);
      else
#endif
        BuildTables<kBits>(values.data(), lanes, n, tables);
      for (size_t b = 0; b < blocks; b++) {
        const uint32_t* chunk = bank + (b * words + j0) * kLanes;
        float* a = acc + b * kLanes * lanes;
#if SUPSUP_HAS_X86
        if (b + 8 < blocks)  // the chunk 8 blocks ahead: n · 32 bytes
          for (size_t line = 0; line < n * 32; line += 64) _mm_prefetch(reinterpret_cast<const char*>(chunk + 8 * words * kLanes) + line, _MM_HINT_T0);
        if (simd == Simd::kAvx512 && lanes == 16) { Block512<kBits>(chunk, n, tables, a); continue; }
        if (simd != Simd::kScalar && lanes == 8) { Block256<kBits>(chunk, n, tables, a); continue; }
#endif
        BlockScalar<kBits>(chunk, n, tables, lanes, a);
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

// 8-bit groups on a large bank, 4-bit ones on a small bank (where the 16 × larger tables would cost more to
// build than they save).
template <class Source>
void Pass(const uint32_t* bank, size_t words, size_t blocks, const Source& source, size_t vec0, size_t count, size_t lanes,
          Simd simd, float* out) {
  if (blocks * kLanes >= kByteGroupSlots) Pass<8>(bank, words, blocks, source, vec0, count, lanes, simd, out);
  else Pass<4>(bank, words, blocks, source, vec0, count, lanes, simd, out);
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
