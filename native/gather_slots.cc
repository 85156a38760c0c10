// Binary search's candidate banks (contract: `gatherSlots` in src/core/kernels/mask-kernels.ts).
//
//   gatherSlots(bank, words, slots, out[, counts])
//
// Copies the masks of `slots` (in that order) into `out` as a fresh bank in the same 8-slot interleave, slot i
// of `out` = slots[i], the tail of the last block zeroed. Each binary-search round then scores and counts only
// its remaining candidates, packed densely, so the rounds cost k/2 + k/4 + … instead of k each.
// With `counts` (Float32Array, words · 32) it also writes counts[w] = how many of the gathered masks keep w
// (the round's superposition), counted from the copy while it is still in L1, so no second pass reads a mask.
//
// The count is bit-sliced (Harley–Seal): a 256-bit vector holds one word of an output block's 8 masks, and
// every 8 blocks a carry-save adder tree (7 full adders) turns their 8 vectors into one vector of "eights",
// added into 16-bit counters per (lane, bit). That is ~3 vector ops per 8 masks' word where a counter per
// mask bit costs 3 per mask; the carries left in the tree (ones, twos, fours) are added once at the end.
// The work is split over word tiles, so each thread owns its counters and its part of `out` (no merging).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;
constexpr size_t kTileWords = 512;  // per word: 512 B of 16-bit counters + 3 carry vectors; ~300 KiB a tile, in L2

// One word of 8 lanes (256 bits), portable. The SIMD paths use the same layout in a register.
struct Vec {
  uint32_t lane[kLanes];
};

// A full adder over 256 bits: (high, low) = a + b + c per bit position.
inline void CsaScalar(Vec& high, Vec& low, const Vec& a, const Vec& b, const Vec& c) {
  for (int l = 0; l < kLanes; l++) {
    const uint32_t u = a.lane[l] ^ b.lane[l];
    high.lane[l] = (a.lane[l] & b.lane[l]) | (u & c.lane[l]);
    low.lane[l] = u ^ c.lane[l];
  }
}

// Per tile word: the carries of the adder tree, and counters of how many eights each (lane, bit) has had.
struct TileCount {
  Vec ones[kTileWords], twos[kTileWords], fours[kTileWords];
  alignas(64) uint16_t eights[kTileWords][kLanes * 32];
  // The first n words' carries. The eights counters are not cleared: the first tree of a tile sets them
  // (`first` below), which saves a pass over 512 B a word per call, most of a small late round's cost.
  void Clear(size_t n) {
    std::memset(ones, 0, n * sizeof(Vec)), std::memset(twos, 0, n * sizeof(Vec)), std::memset(fours, 0, n * sizeof(Vec));
  }
};

// counts[j0 + jj] = Σ over lanes of 8·eights + 4·fours + 2·twos + ones, per bit.
void FinishTile(const TileCount& t, size_t n, float* counts) {
  for (size_t jj = 0; jj < n; jj++) {
    uint32_t sum[32] = {};
    for (int l = 0; l < kLanes; l++) {
      const uint32_t f = t.fours[jj].lane[l], w = t.twos[jj].lane[l], o = t.ones[jj].lane[l];
      const uint16_t* e = t.eights[jj] + l * 32;
      for (int b = 0; b < 32; b++) sum[b] += 8u * e[b] + 4u * ((f >> b) & 1) + 2u * ((w >> b) & 1) + ((o >> b) & 1);
    }
    for (int b = 0; b < 32; b++) counts[jj * 32 + b] = float(sum[b]);
  }
}

// Copies word range [j0, j0 + n) of output block `ob` from its 8 sources (offsets into `bank`, −1 = empty lane).
void CopyChunk(const uint32_t* bank, const int64_t* src, uint32_t* dst, size_t n) {
  for (int l = 0; l < kLanes; l++) {
    if (src[l] < 0) {
      for (size_t jj = 0; jj < n; jj++) dst[jj * kLanes + l] = 0;
      continue;
    }
    const uint32_t* from = bank + src[l];
    for (size_t jj = 0; jj < n; jj++) dst[jj * kLanes + l] = from[jj * kLanes];
  }
}

// Adds the 8 (or fewer: `m`) blocks whose chunks start at c[q] (word j0 of each, stride 8) into t. Portable.
void CountGroupScalar(const uint32_t* const* c, int m, size_t n, bool first, TileCount& t) {
  for (size_t jj = 0; jj < n; jj++) {
    Vec in[8] = {};
    for (int q = 0; q < m; q++) std::memcpy(in[q].lane, c[q] + jj * kLanes, sizeof(Vec));
    Vec twos_a, twos_b, fours_a, fours_b, eights;
    CsaScalar(twos_a, t.ones[jj], t.ones[jj], in[0], in[1]);
    CsaScalar(twos_b, t.ones[jj], t.ones[jj], in[2], in[3]);
    CsaScalar(fours_a, t.twos[jj], t.twos[jj], twos_a, twos_b);
    CsaScalar(twos_a, t.ones[jj], t.ones[jj], in[4], in[5]);
    CsaScalar(twos_b, t.ones[jj], t.ones[jj], in[6], in[7]);
    CsaScalar(fours_b, t.twos[jj], t.twos[jj], twos_a, twos_b);
    CsaScalar(eights, t.fours[jj], t.fours[jj], fours_a, fours_b);
    for (int l = 0; l < kLanes; l++)
      for (int b = 0; b < 32; b++) t.eights[jj][l * 32 + b] = uint16_t((first ? 0 : t.eights[jj][l * 32 + b]) + ((eights.lane[l] >> b) & 1));
  }
}

#if SUPSUP_HAS_X86
SUPSUP_AVX2 inline __m256i Load(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
SUPSUP_AVX2 inline void Store(uint32_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

SUPSUP_AVX2 inline void Csa256(__m256i& high, __m256i& low, __m256i a, __m256i b, __m256i c) {
  const __m256i u = _mm256_xor_si256(a, b);
  high = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
  low = _mm256_xor_si256(u, c);
}

// The tree of CountGroupScalar on 8 ymm inputs `in` and the tile word's carries at `o`, `w`, `f` (Vec); CSA is
// the full adder (and/or/xor on AVX2, two vpternlogd on AVX-512). Leaves the word's eights in `eights`.
#define SUPSUP_EIGHTS(CSA, o_, w_, f_)                                              \
  __m256i o = Load(o_), w = Load(w_), f = Load(f_), twos_a, twos_b, fours_a, fours_b, eights; \
  CSA(twos_a, o, o, in[0], in[1]);                                                  \
  CSA(twos_b, o, o, in[2], in[3]);                                                  \
  CSA(fours_a, w, w, twos_a, twos_b);                                               \
  CSA(twos_a, o, o, in[4], in[5]);                                                  \
  CSA(twos_b, o, o, in[6], in[7]);                                                  \
  CSA(fours_b, w, w, twos_a, twos_b);                                               \
  CSA(eights, f, f, fours_a, fours_b);                                              \
  Store(o_, o), Store(w_, w), Store(f_, f);

// Counter (lane l, bit b) at l·32 + b; AVX2 spreads each lane's 32 bits into 16-bit lanes by an AND with
// one bit per lane and a compare, and subtracts the all-ones result (adds 1).
SUPSUP_AVX2 void CountGroup256(const uint32_t* const* c, int m, size_t n, bool first, TileCount& t) {
  const __m256i low_bits = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768);
  for (size_t jj = 0; jj < n; jj++) {
    __m256i in[8];
    for (int q = 0; q < 8; q++) in[q] = q < m ? Load(c[q] + jj * kLanes) : _mm256_setzero_si256();
    SUPSUP_EIGHTS(Csa256, t.ones[jj].lane, t.twos[jj].lane, t.fours[jj].lane)
    alignas(32) uint32_t e[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(e), eights);
    for (int l = 0; l < kLanes; l++) {
      for (int half = 0; half < 2; half++) {
        __m256i* counter = reinterpret_cast<__m256i*>(t.eights[jj] + l * 32 + half * 16);
        const __m256i bits = _mm256_and_si256(_mm256_set1_epi16(int16_t(e[l] >> (16 * half))), low_bits);
        const __m256i before = first ? _mm256_setzero_si256() : _mm256_load_si256(counter);
        _mm256_store_si256(counter, _mm256_sub_epi16(before, _mm256_cmpeq_epi16(bits, low_bits)));
      }
    }
  }
}

SUPSUP_AVX512 inline void Csa512(__m256i& high, __m256i& low, __m256i a, __m256i b, __m256i c) {
  high = _mm256_ternarylogic_epi32(a, b, c, 0xE8);  // majority
  low = _mm256_ternarylogic_epi32(a, b, c, 0x96);   // a ^ b ^ c
}

// AVX-512 (VL, BW): the full adder is two vpternlogd, and a lane's 32 bits become 32 counters' −1 with vpmovm2w.
SUPSUP_AVX512 void CountGroup512(const uint32_t* const* c, int m, size_t n, bool first, TileCount& t) {
  for (size_t jj = 0; jj < n; jj++) {
    __m256i in[8];
    for (int q = 0; q < 8; q++) in[q] = q < m ? Load(c[q] + jj * kLanes) : _mm256_setzero_si256();
    SUPSUP_EIGHTS(Csa512, t.ones[jj].lane, t.twos[jj].lane, t.fours[jj].lane)
    alignas(32) uint32_t e[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(e), eights);
    for (int l = 0; l < kLanes; l++) {
      __m512i* counter = reinterpret_cast<__m512i*>(t.eights[jj] + l * 32);
      const __m512i before = first ? _mm512_setzero_si512() : _mm512_load_si512(counter);
      _mm512_store_si512(counter, _mm512_sub_epi16(before, _mm512_movm_epi16(_cvtu32_mask32(e[l]))));
    }
  }
}
#undef SUPSUP_EIGHTS

// FinishTile with AVX2: per word, the lanes' eights counters summed as 16-bit vectors (at most 8 · 1024), the
// carries' bits spread into 16-bit counters as in CountGroup256, then widened: 8·E + 4·F + 2·T + O.
SUPSUP_AVX2 void FinishTile256(const TileCount& t, size_t n, float* counts) {
  const __m256i low_bits = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768);
  const auto spread = [&](uint32_t x, int half) SUPSUP_AVX2 {  // −1 in 16-bit lane b where bit 16·half + b is set
    return _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16(int16_t(x >> (16 * half))), low_bits), low_bits);
  };
  for (size_t jj = 0; jj < n; jj++) {
    for (int half = 0; half < 2; half++) {
      __m256i e = _mm256_setzero_si256(), f = e, w = e, o = e;
      for (int l = 0; l < kLanes; l++) {
        e = _mm256_add_epi16(e, _mm256_load_si256(reinterpret_cast<const __m256i*>(t.eights[jj] + l * 32 + half * 16)));
        f = _mm256_sub_epi16(f, spread(t.fours[jj].lane[l], half));
        w = _mm256_sub_epi16(w, spread(t.twos[jj].lane[l], half));
        o = _mm256_sub_epi16(o, spread(t.ones[jj].lane[l], half));
      }
      const __m256i small = _mm256_add_epi16(_mm256_add_epi16(_mm256_slli_epi16(f, 2), _mm256_slli_epi16(w, 1)), o);  // ≤ 56
      for (int q = 0; q < 2; q++) {
        const __m256i e32 = _mm256_cvtepu16_epi32(q ? _mm256_extracti128_si256(e, 1) : _mm256_castsi256_si128(e));
        const __m256i s32 = _mm256_cvtepu16_epi32(q ? _mm256_extracti128_si256(small, 1) : _mm256_castsi256_si128(small));
        _mm256_storeu_ps(counts + jj * 32 + half * 16 + q * 8, _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_slli_epi32(e32, 3), s32)));
      }
    }
  }
}

// FinishTile with AVX-512: 32 counters of a lane in one register, the carries spread with vpmovm2w.
SUPSUP_AVX512 void FinishTile512(const TileCount& t, size_t n, float* counts) {
  for (size_t jj = 0; jj < n; jj++) {
    __m512i e = _mm512_setzero_si512(), f = e, w = e, o = e;
    for (int l = 0; l < kLanes; l++) {
      e = _mm512_add_epi16(e, _mm512_load_si512(t.eights[jj] + l * 32));
      f = _mm512_sub_epi16(f, _mm512_movm_epi16(_cvtu32_mask32(t.fours[jj].lane[l])));
      w = _mm512_sub_epi16(w, _mm512_movm_epi16(_cvtu32_mask32(t.twos[jj].lane[l])));
      o = _mm512_sub_epi16(o, _mm512_movm_epi16(_cvtu32_mask32(t.ones[jj].lane[l])));
    }
    const __m512i small = _mm512_add_epi16(_mm512_add_epi16(_mm512_slli_epi16(f, 2), _mm512_slli_epi16(w, 1)), o);
    for (int q = 0; q < 2; q++) {
      const __m512i e32 = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(e, q));
      const __m512i s32 = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(small, q));
      _mm512_storeu_ps(counts + jj * 32 + q * 16, _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(e32, 3), s32)));
    }
  }
}
#endif

void GatherSlots(const uint32_t* bank, size_t words, const int32_t* slots, size_t n, uint32_t* out, float* counts) {
  const size_t out_blocks = (n + kLanes - 1) / kLanes, tiles = (words + kTileWords - 1) / kTileWords;
  std::vector<int64_t> src(out_blocks * kLanes, -1);  // each output lane's word 0 in `bank`
  for (size_t i = 0; i < n; i++) src[i] = int64_t((size_t(slots[i]) / kLanes) * words * kLanes + size_t(slots[i]) % kLanes);
  if (out_blocks == 0) {  // no tree runs, so none sets the eights counters FinishTile reads
    if (counts) std::fill(counts, counts + words * 32, 0.0f);
    return;
  }
  const Simd simd = CurrentSimd();
  ParallelFor(tiles, n * words < (size_t(1) << 16), [&](int, size_t tile) {
    const size_t j0 = tile * kTileWords, len = std::min(kTileWords, words - j0);
    thread_local std::unique_ptr<TileCount> owned(new TileCount);
    TileCount& count = *owned;
    if (counts) count.Clear(len);
    for (size_t g = 0; g < out_blocks; g += 8) {  // 8 output blocks: one adder tree
      const int m = int(std::min<size_t>(8, out_blocks - g));
      const uint32_t* chunk[8];
      for (int q = 0; q < m; q++) {
        const size_t ob = g + size_t(q);
        int64_t from[kLanes];
        for (int l = 0; l < kLanes; l++) from[l] = src[ob * kLanes + l] < 0 ? -1 : src[ob * kLanes + l] + int64_t(j0 * kLanes);
        uint32_t* dst = out + (ob * words + j0) * kLanes;
        CopyChunk(bank, from, dst, len);
        chunk[q] = dst;
      }
      if (!counts) continue;
#if SUPSUP_HAS_X86
      if (simd == Simd::kAvx512) { CountGroup512(chunk, m, len, g == 0, count); continue; }
      if (simd == Simd::kAvx2) { CountGroup256(chunk, m, len, g == 0, count); continue; }
#endif
      CountGroupScalar(chunk, m, len, g == 0, count);
    }
    if (!counts) return;
#if SUPSUP_HAS_X86
    if (simd == Simd::kAvx512) return FinishTile512(count, len, counts + j0 * 32);
    if (simd == Simd::kAvx2) return FinishTile256(count, len, counts + j0 * 32);
#endif
    FinishTile(count, len, counts + j0 * 32);
  });
}

Napi::Value JsGatherSlots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t *bank, *out;
  int32_t* slots;
  size_t bank_len, nslots, out_len, words;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Typed(info[2], napi_int32_array, slots, nslots)) return Refuse(env, "slots must be an Int32Array");
  if (!Typed(info[3], napi_uint32_array, out, out_len)) return Refuse(env, "out must be a Uint32Array");
  if (bank_len % (words * kLanes) != 0) return Refuse(env, "bank length is not a multiple of words * 8");
  if (out_len < (nslots + kLanes - 1) / kLanes * kLanes * words) return Refuse(env, "out is shorter than ceil(slots / 8) * 8 * words");
  if (std::any_of(slots, slots + nslots, [&](int32_t s) { return s < 0 || size_t(s) >= bank_len / words; }))
    return Refuse(env, "a slot is outside the bank");
  float* counts = nullptr;
  size_t counts_len = 0;
  if (!info[4].IsUndefined() && (!Typed(info[4], napi_float32_array, counts, counts_len) || counts_len < words * 32))
    return Refuse(env, "counts must be a Float32Array of words * 32 values");
  if (nslots > 65535 && counts) return Refuse(env, "counts are kept in 16 bits: at most 65535 slots");
  GatherSlots(bank, words, slots, nslots, out, counts);
  return env.Undefined();
}

}  // namespace

void RegisterGatherSlots(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherSlots", Napi::Function::New(env, JsGatherSlots, "gatherSlots"));
}

}  // namespace supsup
