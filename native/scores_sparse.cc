// `scores` for one vector, visiting only the mask words where the vector is not all zero (contract: `scoresSparse`
// in src/core/kernels/mask-kernels.ts).
//
//   scoresSparse(bank, words, blocks, v, out)
//
// One-shot V (a_i · δ_j · W_ij, layers [in][out]) is zero on whole rows: a hidden unit that is off (a_i = 0)
// zeroes its row of every later layer. Such a 32-weight word adds nothing to any task's score, so this kernel
// lists the words whose 32 values are not all zero, once per call, and reads only those words of every block.
//
// Same result, bit for bit, as `scores` (supsup_kernels.cc) with examples = 1 on the same path: the same
// partial-sum tables and per-word lookups, summed in the same order and the same tiles (32 words) and groups
// (up to 16 contiguous tile groups, added in group order). A skipped word's sum is ±0, and adding ±0 changes
// none of the sums (none of them is ever −0: each starts at +0), so leaving it out changes no bit. Here the
// per-slot running sums (word total of the tile, tile total of the group, group total) are carried in memory
// from one chunk of listed words to the next, so a tile or group may span chunks.
//
// Work split: blocks in items of kItemBlocks, handed to the two threads; every slot's sums are its own, so the
// split changes no bit. Within an item: chunks of kChunkWords listed words (their tables in L1), and for each
// chunk every block of the item.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernel_common.h"
#include "lookup4_avx512.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;             // BLOCK_SLOTS
constexpr size_t kTileWords = 32;     // `scores`' tile for one vector (TileWords(1))
constexpr size_t kMaxGroups = 16;     // `scores`' tile groups
constexpr size_t kChunkWords = 32;    // listed words per chunk: 16 KiB of AVX-512 tables, in L1
constexpr size_t kItemBlocks = 32;    // blocks per work item (multiple of 4)
constexpr int kTable3 = 12 * 8;       // AVX2 / scalar table floats per word: 8 3-bit and 4 2-bit groups
constexpr int kTable4 = kLookup4TableFloats;  // AVX-512 table floats per word: 8 4-bit groups

// What to do with the running sums before a listed word: 0 nothing, 1 close the tile, 2 close tile and group.
struct WordList {
  std::vector<uint32_t> word;
  std::vector<uint8_t> step;
};

WordList ListNonzeroWords(const float* v, size_t words) {
  const size_t tiles = (words + kTileWords - 1) / kTileWords, groups = std::min(tiles, kMaxGroups);
  const size_t per_group = (tiles + groups - 1) / groups;
  WordList list;
  size_t last_tile = 0, last_group = 0;
  for (size_t j = 0; j < words; j++) {
    uint32_t any = 0;  // bits of the 32 floats without their signs: ±0 is zero, anything else (NaN too) is not
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(v + j * 32);
    for (int b = 0; b < 32; b++) any |= bits[b] << 1;
    if (!any) continue;
    const size_t tile = j / kTileWords, group = tile / per_group;
    list.word.push_back(uint32_t(j));
    list.step.push_back(group != last_group ? 2 : tile != last_tile ? 1 : 0);
    last_tile = tile;
    last_group = group;
  }
  return list;
}

// The tables of `scores`, built the same way on each path (supsup_kernels.cc: BuildTables, BuildTablesAvx2,
// BuildTables512), for the listed words only.
void Tables3Scalar(const float* v, const WordList& list, float* t) {
  for (size_t i = 0; i < list.word.size(); i++, t += kTable3) {
    const float* w = v + size_t(list.word[i]) * 32;
    for (int g = 0; g < 8; g++) {
      const float a = w[3 * g], b = w[3 * g + 1], c = w[3 * g + 2];
      float* e = t + 8 * g;
      e[0] = 0; e[1] = a; e[2] = b; e[3] = a + b;
      e[4] = c; e[5] = a + c; e[6] = b + c; e[7] = (a + b) + c;
    }
    for (int g = 0; g < 4; g++) {
      const float a = w[24 + 2 * g], b = w[25 + 2 * g];
      float* e = t + 8 * (8 + g);
      e[0] = e[4] = 0; e[1] = e[5] = a; e[2] = e[6] = b; e[3] = e[7] = a + b;
    }
  }
}

// Scalar: the running sums of one slot over listed words [c0, c1) (TileScalar's order).
void SlotScalar(const uint32_t* slot_words, const WordList& list, size_t c0, size_t c1, const float* tables, float* sums) {
  float tot = sums[0], acc = sums[1], out = sums[2];
  for (size_t i = c0; i < c1; i++) {
    if (list.step[i]) {
      acc += tot;
      tot = 0;
      if (list.step[i] == 2) { out += acc; acc = 0; }
    }
    const uint32_t x = slot_words[size_t(list.word[i]) * kLanes];
    const float* t = tables + i * kTable3;
    float s = 0;
    for (int g = 0; g < 8; g++) s += t[8 * g + ((x >> (3 * g)) & 7)];
    for (int g = 0; g < 4; g++) s += t[8 * (8 + g) + ((x >> (24 + 2 * g)) & 3)];
    tot += s;
  }
  sums[0] = tot; sums[1] = acc; sums[2] = out;
}

#if SUPSUP_HAS_X86
SUPSUP_AVX2 void Tables3Avx2(const float* v, const WordList& list, float* t) {
  const __m256 m0 = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
  const __m256 m1 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, -1, -1, 0, 0, -1, -1));
  const __m256 m2 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1));
  for (size_t i = 0; i < list.word.size(); i++, t += kTable3) {
    const float* w = v + size_t(list.word[i]) * 32;
    for (int g = 0; g < 8; g++) {
      const __m256 a = _mm256_and_ps(_mm256_broadcast_ss(w + 3 * g), m0);
      const __m256 b = _mm256_and_ps(_mm256_broadcast_ss(w + 3 * g + 1), m1);
      const __m256 c = _mm256_and_ps(_mm256_broadcast_ss(w + 3 * g + 2), m2);
      _mm256_store_ps(t + 8 * g, _mm256_add_ps(_mm256_add_ps(a, b), c));
    }
    for (int g = 0; g < 4; g++) {
      const __m256 a = _mm256_and_ps(_mm256_broadcast_ss(w + 24 + 2 * g), m0);
      const __m256 b = _mm256_and_ps(_mm256_broadcast_ss(w + 25 + 2 * g), m1);
      _mm256_store_ps(t + 8 * (8 + g), _mm256_add_ps(a, b));
    }
  }
}

// A table row kept out of the permute's memory operand (see TableRow in supsup_kernels.cc: Zen 3 issues the
// memory form at half rate).
SUPSUP_AVX2 inline __m256 Row(const float* p) {
  __m256 row = _mm256_load_ps(p);
  __asm__("" : "+x"(row));
  return row;
}

// AVX2: the running sums of one block (8 slots, `sums` = tot, acc, out × 8 lanes) over listed words [c0, c1),
// each word looked up as TilePairAvx2 does. Prefetches the same words of block `next`.
SUPSUP_AVX2 void BlockAvx2(const uint32_t* block, const uint32_t* next, const WordList& list, size_t c0, size_t c1,
                           const float* tables, float* sums) {
  __m256 tot = _mm256_loadu_ps(sums), acc = _mm256_loadu_ps(sums + 8), out = _mm256_loadu_ps(sums + 16);
  for (size_t i = c0; i < c1; i++) {
    if (list.step[i]) {
      acc = _mm256_add_ps(acc, tot);
      tot = _mm256_setzero_ps();
      if (list.step[i] == 2) { out = _mm256_add_ps(out, acc); acc = _mm256_setzero_ps(); }
    }
    const size_t at = size_t(list.word[i]) * kLanes;
    _mm_prefetch(reinterpret_cast<const char*>(next + at), _MM_HINT_T0);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + at));
    const float* t = tables + i * kTable3;
    __m256 xa = _mm256_permutevar8x32_ps(Row(t), x);
    __m256 xb = _mm256_permutevar8x32_ps(Row(t + 8), _mm256_srli_epi32(x, 3));
    __m256 xc = _mm256_permutevar_ps(Row(t + 64), _mm256_srli_epi32(x, 24));
    xa = _mm256_add_ps(xa, _mm256_permutevar8x32_ps(Row(t + 16), _mm256_srli_epi32(x, 6)));
    xb = _mm256_add_ps(xb, _mm256_permutevar8x32_ps(Row(t + 24), _mm256_srli_epi32(x, 9)));
    xa = _mm256_add_ps(xa, _mm256_permutevar8x32_ps(Row(t + 32), _mm256_srli_epi32(x, 12)));
    xb = _mm256_add_ps(xb, _mm256_permutevar8x32_ps(Row(t + 40), _mm256_srli_epi32(x, 15)));
    xa = _mm256_add_ps(xa, _mm256_permutevar8x32_ps(Row(t + 48), _mm256_srli_epi32(x, 18)));
    xb = _mm256_add_ps(xb, _mm256_permutevar8x32_ps(Row(t + 56), _mm256_srli_epi32(x, 21)));
    xc = _mm256_add_ps(xc, _mm256_permutevar_ps(Row(t + 72), _mm256_srli_epi32(x, 26)));
    xc = _mm256_add_ps(xc, _mm256_permutevar_ps(Row(t + 80), _mm256_srli_epi32(x, 28)));
    xc = _mm256_add_ps(xc, _mm256_permutevar_ps(Row(t + 88), _mm256_srli_epi32(x, 30)));
    tot = _mm256_add_ps(tot, _mm256_add_ps(_mm256_add_ps(xa, xb), xc));
  }
  _mm256_storeu_ps(sums, tot);
  _mm256_storeu_ps(sums + 8, acc);
  _mm256_storeu_ps(sums + 16, out);
}

SUPSUP_AVX512 void Tables4Avx512(const float* v, const WordList& list, float* t) {
  for (size_t i = 0; i < list.word.size(); i++, t += kTable4) Lookup4Tables(v + size_t(list.word[i]) * 32, t);
}

// AVX-512: the running sums of four blocks (c[0], c[1] in one register, c[2], c[3] in the other; `sums` =
// tot, acc, out × 32 lanes) over listed words [c0, c1), each word looked up as TileQuad512 does (both call
// Lookup4Quad, lookup4_avx512.h: the same bits depend on it, and the test checks them). Prefetches the same words
// of the blocks next[q].
SUPSUP_AVX512 void QuadAvx512(const uint32_t* const* c, const uint32_t* const* next, const WordList& list, size_t c0,
                              size_t c1, const float* tables, float* sums) {
  __m512 tot0 = _mm512_loadu_ps(sums), tot1 = _mm512_loadu_ps(sums + 16);
  __m512 acc0 = _mm512_loadu_ps(sums + 32), acc1 = _mm512_loadu_ps(sums + 48);
  __m512 out0 = _mm512_loadu_ps(sums + 64), out1 = _mm512_loadu_ps(sums + 80);
  for (size_t i = c0; i < c1; i++) {
    if (list.step[i]) {
      acc0 = _mm512_add_ps(acc0, tot0);
      acc1 = _mm512_add_ps(acc1, tot1);
      tot0 = tot1 = _mm512_setzero_ps();
      if (list.step[i] == 2) {
        out0 = _mm512_add_ps(out0, acc0);
        out1 = _mm512_add_ps(out1, acc1);
        acc0 = acc1 = _mm512_setzero_ps();
      }
    }
    const size_t at = size_t(list.word[i]) * kLanes;
    for (int q = 0; q < 4; q++) _mm_prefetch(reinterpret_cast<const char*>(next[q] + at), _MM_HINT_T0);
    Lookup4Quad(c, at, tables + i * kTable4, tot0, tot1);
  }
  _mm512_storeu_ps(sums, tot0);
  _mm512_storeu_ps(sums + 16, tot1);
  _mm512_storeu_ps(sums + 32, acc0);
  _mm512_storeu_ps(sums + 48, acc1);
  _mm512_storeu_ps(sums + 64, out0);
  _mm512_storeu_ps(sums + 80, out1);
}
#endif

float* Align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

void ScoresSparse(const uint32_t* bank, size_t words, size_t blocks, const float* v, float* out) {
  const size_t slots = blocks * kLanes;
  const WordList list = ListNonzeroWords(v, words);
  const size_t n = list.word.size();
  std::fill(out, out + slots, 0.0f);
  if (blocks == 0 || n == 0) return;
  const Simd simd = CurrentSimd();
  const size_t table_floats = simd == Simd::kAvx512 ? kTable4 : kTable3;
  // Kept per calling thread and grown, never shrunk, as the other kernels keep their scratch: no 1.4-5 MB block
  // (LeNet 300-100's listed words on AVX-512) allocated per call. Every table is written before it is read.
  thread_local std::vector<float> table_store;
  if (table_store.size() < n * table_floats + 16) table_store.resize(n * table_floats + 16);
  float* tables = Align64(table_store.data());
#if SUPSUP_HAS_X86
  if (simd == Simd::kAvx512) Tables4Avx512(v, list, tables);
  else if (simd == Simd::kAvx2) Tables3Avx2(v, list, tables);
  else
#endif
    Tables3Scalar(v, list, tables);

  const size_t items = (blocks + kItemBlocks - 1) / kItemBlocks;
  ParallelFor(items, n * blocks < 4096, [&](int, size_t item) {
    const size_t b0 = item * kItemBlocks, b1 = std::min(blocks, b0 + kItemBlocks);
    // Running sums (tot, acc, out) of every slot of the item; the AVX-512 path's quads hold 32 slots each.
    float sums[kItemBlocks * kLanes * 3] = {};
    for (size_t c0 = 0; c0 < n; c0 += kChunkWords) {
      const size_t c1 = std::min(n, c0 + kChunkWords);
      for (size_t b = b0; b < b1;) {
        const uint32_t* block = bank + b * words * kLanes;
#if SUPSUP_HAS_X86
        if (simd == Simd::kAvx512) {  // past the item's last block, block b stands in and its sums are dropped
          const uint32_t* c[4];
          const uint32_t* next[4];
          for (size_t q = 0; q < 4; q++) {
            c[q] = b + q < b1 ? block + q * words * kLanes : block;
            next[q] = b + q + 4 < b1 ? c[q] + 4 * words * kLanes : c[q];
          }
          float* s = sums + (b - b0) * kLanes * 3;
          QuadAvx512(c, next, list, c0, c1, tables, s);
          b += 4;
          continue;
        }
        if (simd == Simd::kAvx2) {
          const uint32_t* next = b + 2 < b1 ? block + 2 * words * kLanes : block;
          BlockAvx2(block, next, list, c0, c1, tables, sums + (b - b0) * kLanes * 3);
          b++;
          continue;
        }
#endif
        for (int l = 0; l < kLanes; l++) SlotScalar(block + l, list, c0, c1, tables, sums + ((b - b0) * kLanes + l) * 3);
        b++;
      }
    }
    // Close the last tile and group, and write the slots out from the path's layout of the sums.
    for (size_t b = b0; b < b1; b++) {
      for (int l = 0; l < kLanes; l++) {
        float tot, acc, total;
        if (simd == Simd::kAvx512) {
          const size_t quad = (b - b0) / 4, lane = ((b - b0) % 4) * kLanes + l;  // 32 lanes per quad
          const float* s = sums + quad * 96;
          const size_t r = lane / 16, e = lane % 16;
          tot = s[r * 16 + e], acc = s[32 + r * 16 + e], total = s[64 + r * 16 + e];
        } else if (simd == Simd::kAvx2) {
          const float* s = sums + (b - b0) * kLanes * 3;
          tot = s[l], acc = s[8 + l], total = s[16 + l];
        } else {
          const float* s = sums + ((b - b0) * kLanes + l) * 3;
          tot = s[0], acc = s[1], total = s[2];
        }
        acc += tot;
        out[b * kLanes + l] = total + acc;
      }
    }
  });
}

Napi::Value JsScoresSparse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t* bank;
  float *v, *out;
  size_t bank_len, v_len, out_len, words, blocks;
  if (!Typed(info[0], napi_uint32_array, bank, bank_len)) return Refuse(env, "bank must be a Uint32Array");
  if (!Count(info[1], words) || words == 0) return Refuse(env, "words must be a positive integer");
  if (!Count(info[2], blocks)) return Refuse(env, "blocks must be a non-negative integer");
  if (!Typed(info[3], napi_float32_array, v, v_len)) return Refuse(env, "v must be a Float32Array");
  if (!Typed(info[4], napi_float32_array, out, out_len)) return Refuse(env, "out must be a Float32Array");
  if (bank_len / words / kLanes < blocks) return Refuse(env, "bank is shorter than blocks * words * 8");
  if (v_len / 32 < words) return Refuse(env, "v is shorter than words * 32");
  if (out_len / kLanes < blocks) return Refuse(env, "out is shorter than blocks * 8");
  ScoresSparse(bank, words, blocks, v, out);
  return env.Undefined();
}

}  // namespace

void RegisterScoresSparse(Napi::Env env, Napi::Object exports) {
  exports.Set("scoresSparse", Napi::Function::New(env, JsScoresSparse, "scoresSparse"));
}

}  // namespace supsup
