// Binary search's candidate banks (contract: `gatherSlots` in src/core/kernels/mask-kernels.ts).
//
//   gatherSlots(bank, words, slots, out[, counts[, at]])
//
// Copies the masks of `slots` (in that order) into `out` as a fresh bank in the same 8-slot interleave, slot i
// of `out` = slots[i], the tail of the last block zeroed. Each binary-search round then scores and counts only
// its remaining candidates, packed densely, so the rounds cost k/2 + k/4 + … instead of k each.
// With `counts` (Float32Array, words · 32) it also writes counts[w] = how many of the gathered masks keep w,
// counted while they are copied (the round's superposition), so no second pass over the bank counts them.
// With `at` (Int32Array of word indices < words) only those words are copied, word j of `out` = word at[j] of
// the bank (`out` and `counts` then hold at.length words a mask): a search from one example needs only the
// words its input reaches (src/core/live-words.ts). `counts` may be undefined to copy without counting.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;
constexpr size_t kFlushBlocks = 31;  // byte counters: each output block adds at most 8 to one
constexpr size_t kAhead = 16;        // words read ahead: `at` skips words, which the hardware prefetchers do not follow

// Where one output block's 8 masks come from: src[l] (null past the last slot), and the distinct source blocks
// they lie in (consecutive slots mostly share one), whose word at[j + kAhead] each step prefetches.
struct Sources {
  const uint32_t* src[kLanes];
  const uint32_t* blocks[kLanes];
  int nblocks = 0;
  inline void Prefetch(const uint32_t* at, size_t j, size_t words) const {
    if (j + kAhead >= words) return;
    for (int b = 0; b < nblocks; b++) __builtin_prefetch(blocks[b] + size_t(at[j + kAhead]) * kLanes);
  }
};

// One output block's words: dst[j * 8 + l] = src[l][at[j] * 8] (0 where src[l] is null), and narrow[j * 32 + b]
// += bit b of each copied word. Portable version.
void CopyCountScalar(const Sources& s, const uint32_t* at, uint32_t* dst, size_t words, uint8_t* narrow) {
  const uint32_t* const* src = s.src;
  for (size_t j = 0; j < words; j++) {
    s.Prefetch(at, j, words);
    for (int l = 0; l < kLanes; l++) {
      const uint32_t x = src[l] ? src[l][size_t(at[j]) * kLanes] : 0;
      dst[j * kLanes + l] = x;
      for (int b = 0; b < 32; b++) narrow[j * 32 + b] += (x >> b) & 1;
    }
  }
}

#if SUPSUP_HAS_X86
SUPSUP_AVX512 void CopyCount512(const Sources& s, const uint32_t* at, uint32_t* dst, size_t words, uint8_t* narrow) {
  const uint32_t* const* src = s.src;
  for (size_t j = 0; j < words; j++) {
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(narrow + j * 32));
    const size_t from = size_t(at[j]) * kLanes;
    s.Prefetch(at, j, words);
    for (int l = 0; l < kLanes; l++) {
      const uint32_t x = src[l] ? src[l][from] : 0;
      dst[j * kLanes + l] = x;
      acc = _mm256_sub_epi8(acc, _mm256_movm_epi8(_cvtu32_mask32(x)));  // a set bit is byte −1
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(narrow + j * 32), acc);
  }
}

// Bits to bytes: byte i of the broadcast word's byte i / 8, tested against bit i % 8.
SUPSUP_AVX2 void CopyCount256(const Sources& s, const uint32_t* at, uint32_t* dst, size_t words, uint8_t* narrow) {
  const uint32_t* const* src = s.src;
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  for (size_t j = 0; j < words; j++) {
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(narrow + j * 32));
    const size_t from = size_t(at[j]) * kLanes;
    s.Prefetch(at, j, words);
    for (int l = 0; l < kLanes; l++) {
      const uint32_t x = src[l] ? src[l][from] : 0;
      dst[j * kLanes + l] = x;
      const __m256i bytes = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(x)), spread), bit);
      acc = _mm256_sub_epi8(acc, _mm256_cmpeq_epi8(bytes, bit));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(narrow + j * 32), acc);
  }
}
#endif

// Per worker: byte counters, and the 16-bit ones they are flushed into; made by the worker on its first block (a
// small gather runs on one), the 16-bit ones on its first flush (most of a search's gathers have none).
struct Tally {
  std::vector<uint8_t> narrow;
  std::vector<uint16_t> wide;
  size_t pending = 0;
  void Flush() {
    if (wide.empty()) wide.assign(narrow.size(), 0);
    for (size_t w = 0; w < narrow.size(); w++) wide[w] = uint16_t(wide[w] + narrow[w]);
    std::fill(narrow.begin(), narrow.end(), 0);
    pending = 0;
  }
  void AddTo(float* counts) const {
    for (size_t w = 0; w < wide.size(); w++) counts[w] += float(wide[w]);
    for (size_t w = 0; w < narrow.size(); w++) counts[w] += float(narrow[w]);
  }
};

// `at`: the bank's word for each of the `out_words` words of an output mask.
void GatherSlots(const uint32_t* bank, size_t words, const int32_t* slots, size_t n, const uint32_t* at, size_t out_words, uint32_t* out, float* counts) {
  const size_t out_blocks = (n + kLanes - 1) / kLanes;
  const Simd simd = CurrentSimd();
  Tally tally[2];
  ParallelFor(out_blocks, n * out_words < (size_t(1) << 16), [&](int worker, size_t ob) {
    Sources s;
    for (int l = 0; l < kLanes; l++) {
      const size_t i = ob * kLanes + l;
      if (i >= n) {
        s.src[l] = nullptr;
        continue;
      }
      const uint32_t* block = bank + (size_t(slots[i]) / kLanes) * words * kLanes;
      s.src[l] = block + size_t(slots[i]) % kLanes;
      if (s.nblocks == 0 || s.blocks[s.nblocks - 1] != block) s.blocks[s.nblocks++] = block;
    }
    uint32_t* dst = out + ob * out_words * kLanes;
    if (!counts) {
      for (size_t j = 0; j < out_words; j++) {
        s.Prefetch(at, j, out_words);
        for (int l = 0; l < kLanes; l++) dst[j * kLanes + l] = s.src[l] ? s.src[l][size_t(at[j]) * kLanes] : 0;
      }
      return;
    }
    Tally& t = tally[worker];
    if (t.narrow.empty()) t.narrow.assign(out_words * 32, 0);
#if SUPSUP_HAS_X86
    if (simd == Simd::kAvx512) CopyCount512(s, at, dst, out_words, t.narrow.data());
    else if (simd == Simd::kAvx2) CopyCount256(s, at, dst, out_words, t.narrow.data());
    else
#endif
      CopyCountScalar(s, at, dst, out_words, t.narrow.data());
    if (++t.pending == kFlushBlocks) t.Flush();
  });
  if (!counts) return;
  std::fill(counts, counts + out_words * 32, 0.0f);
  for (const Tally& t : tally) t.AddTo(counts);
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
  if (std::any_of(slots, slots + nslots, [&](int32_t s) { return s < 0 || size_t(s) >= bank_len / words; }))
    return Refuse(env, "a slot is outside the bank");
  std::vector<uint32_t> every;
  const uint32_t* at;
  size_t out_words;
  if (!info[5].IsUndefined()) {
    int32_t* list;
    if (!Typed(info[5], napi_int32_array, list, out_words)) return Refuse(env, "at must be an Int32Array of word indices");
    if (std::any_of(list, list + out_words, [&](int32_t j) { return j < 0 || size_t(j) >= words; })) return Refuse(env, "a word of at is outside the mask");
    at = reinterpret_cast<const uint32_t*>(list);
  } else {
    every.resize(words);
    for (size_t j = 0; j < words; j++) every[j] = uint32_t(j);
    at = every.data(), out_words = words;
  }
  if (out_len < (nslots + kLanes - 1) / kLanes * kLanes * out_words) return Refuse(env, "out is shorter than ceil(slots / 8) * 8 * words");
  float* counts = nullptr;
  size_t counts_len = 0;
  if (!info[4].IsUndefined() && (!Typed(info[4], napi_float32_array, counts, counts_len) || counts_len < out_words * 32))
    return Refuse(env, "counts must be a Float32Array of words * 32 values");
  if (nslots > 65535 && counts) return Refuse(env, "counts are kept in 16 bits: at most 65535 slots");
  GatherSlots(bank, words, slots, nslots, at, out_words, out, counts);
  return env.Undefined();
}

}  // namespace

void RegisterGatherSlots(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherSlots", Napi::Function::New(env, JsGatherSlots, "gatherSlots"));
}

}  // namespace supsup
