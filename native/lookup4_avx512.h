// The AVX-512 form of `scores`' per-word step, shared by the dense (supsup_kernels.cc) and sparse
// (scores_sparse.cc) passes so that both give the same bits by construction: a word's 32 values of V become 8
// tables of 16 partial sums (one per 4-bit group), and four blocks' mask words (two registers of 16 slots) are
// looked up in them with `vpermps`, the 8 lookups summed as a tree.
#ifndef SUPSUP_LOOKUP4_AVX512_H
#define SUPSUP_LOOKUP4_AVX512_H

#include <cstdint>

#include "kernel_common.h"

#if SUPSUP_HAS_X86
namespace supsup {

constexpr int kLookup4Groups = 8;                       // 4-bit groups of a 32-bit word
constexpr int kLookup4TableFloats = kLookup4Groups * 16;  // table floats per word

#define SUPSUP_LOOKUP4 inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

// The 8 tables of one word's values w[0..31] into t (64-byte aligned).
SUPSUP_LOOKUP4 void Lookup4Tables(const float* w, float* t) {
  for (int g = 0; g < kLookup4Groups; g++) {
    const __m512 a = _mm512_maskz_mov_ps(0xAAAA, _mm512_set1_ps(w[4 * g]));
    const __m512 b = _mm512_maskz_mov_ps(0xCCCC, _mm512_set1_ps(w[4 * g + 1]));
    const __m512 c = _mm512_maskz_mov_ps(0xF0F0, _mm512_set1_ps(w[4 * g + 2]));
    const __m512 d = _mm512_maskz_mov_ps(0xFF00, _mm512_set1_ps(w[4 * g + 3]));
    _mm512_store_ps(t + 16 * g, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), c), d));
  }
}

// tot0 += the word's lookups for the 16 slots of blocks c[0], c[1]; tot1 for c[2], c[3]. Each c[q] + at points at
// that block's 8 slot words of this word (kLanes = 8 lanes of 32 bits).
SUPSUP_LOOKUP4 void Lookup4Quad(const uint32_t* const* c, size_t at, const float* t, __m512& tot0, __m512& tot1) {
  const __m256i* w0 = reinterpret_cast<const __m256i*>(c[0] + at);
  const __m256i* w1 = reinterpret_cast<const __m256i*>(c[1] + at);
  const __m256i* w2 = reinterpret_cast<const __m256i*>(c[2] + at);
  const __m256i* w3 = reinterpret_cast<const __m256i*>(c[3] + at);
  const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(w0)), _mm256_loadu_si256(w1), 1);
  const __m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(w2)), _mm256_loadu_si256(w3), 1);
  __m512 px[kLookup4Groups], py[kLookup4Groups];
  for (int g = 0; g < kLookup4Groups; g++) {
    const __m512 row = _mm512_load_ps(t + 16 * g);
    px[g] = _mm512_permutexvar_ps(_mm512_srli_epi32(x, 4 * g), row);
    py[g] = _mm512_permutexvar_ps(_mm512_srli_epi32(y, 4 * g), row);
  }
  // The 8 lookups summed as a tree: one loop-carried add per word and register.
  tot0 = _mm512_add_ps(tot0, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(px[0], px[1]), _mm512_add_ps(px[2], px[3])),
                                           _mm512_add_ps(_mm512_add_ps(px[4], px[5]), _mm512_add_ps(px[6], px[7]))));
  tot1 = _mm512_add_ps(tot1, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(py[0], py[1]), _mm512_add_ps(py[2], py[3])),
                                           _mm512_add_ps(_mm512_add_ps(py[4], py[5]), _mm512_add_ps(py[6], py[7]))));
}

#undef SUPSUP_LOOKUP4
}  // namespace supsup
#endif
#endif
