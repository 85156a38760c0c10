// Shared by the kernel files: the addon's two-thread tile runner (defined in supsup_kernels.cc) and the SIMD
// level the newer kernels dispatch on (defined in simd_level.cc).
#pragma once

#include <napi.h>

#include <cstddef>
#include <functional>

namespace supsup {

// Runs body(worker, tile) for every tile in [0, tiles) on the caller and the addon's helper thread (unless
// `small`); tiles are handed out by an atomic counter, so the split does not depend on thread timing.
void ParallelFor(size_t tiles, bool small, const std::function<void(int, size_t)>& body);

// The code path the newer kernels (forward_bits.cc, scores_multi.cc) take. Detected once; forcible for tests.
enum class Simd { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
Simd CurrentSimd();

void RegisterSimdLevel(Napi::Env env, Napi::Object exports);
void RegisterForwardBits(Napi::Env env, Napi::Object exports);
void RegisterScoresMulti(Napi::Env env, Napi::Object exports);

}  // namespace supsup

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SUPSUP_HAS_X86 1
#include <immintrin.h>
#define SUPSUP_AVX2 __attribute__((target("avx2,fma,bmi,bmi2")))
#define SUPSUP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2")))
#else
#define SUPSUP_HAS_X86 0
#endif
