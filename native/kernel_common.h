// Shared by the kernel files: the addon's two-thread tile runner (defined in supsup_kernels.cc), the SIMD
// level the newer kernels dispatch on (defined in simd_level.cc), and the N-API argument readers.
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
void RegisterGatherSlots(Napi::Env env, Napi::Object exports);
void RegisterSuperposedPass(Napi::Env env, Napi::Object exports);
void RegisterScoresSparse(Napi::Env env, Napi::Object exports);
void RegisterColumnSums(Napi::Env env, Napi::Object exports);

// Throws a RangeError naming the caller's mistake; returns undefined, for the N-API function to return.
inline Napi::Value Refuse(Napi::Env env, const char* msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A typed array of the given type (false if the value is anything else).
template <class T>
bool Typed(const Napi::Value& v, napi_typedarray_type type, T*& data, size_t& length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) return false;
  auto a = v.As<Napi::TypedArrayOf<T>>();
  data = a.Data();
  length = a.ElementLength();
  return true;
}

// A non-negative integer number (false otherwise).
inline bool Count(const Napi::Value& v, size_t& out) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 9007199254740991.0 && d == double(size_t(d)))) return false;
  out = size_t(d);
  return true;
}

}  // namespace supsup

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SUPSUP_HAS_X86 1
#include <immintrin.h>
#define SUPSUP_AVX2 __attribute__((target("avx2,fma,bmi,bmi2")))
#define SUPSUP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2")))
#else
#define SUPSUP_HAS_X86 0
#endif
