// Run-time choice between the scalar, AVX2 and AVX-512 code of the newer kernels (forward_bits.cc,
// scores_multi.cc, gather_slots.cc, train_gemm.cc). Separate from the older kernels' cpuPath/setCpuPath (avx2|scalar), which it leaves alone.
//
//   simdLevel() -> 'avx512' | 'avx2' | 'scalar'
//   setSimdLevel('auto' | 'avx512' | 'avx2' | 'scalar') -> the level now in use (throws if the CPU lacks it)

#include <atomic>
#include <mutex>
#include <string>

#include "kernel_common.h"

namespace supsup {
namespace {

Simd g_best = Simd::kScalar;
std::atomic<Simd> g_current{Simd::kScalar};

void Detect() {
  static std::once_flag once;  // Init runs again in every worker thread that loads the addon
  std::call_once(once, [] {
#if SUPSUP_HAS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
      g_best = Simd::kAvx2;
    if (g_best == Simd::kAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      g_best = Simd::kAvx512;
#endif
    g_current = g_best;
  });
}

const char* Name(Simd s) { return s == Simd::kAvx512 ? "avx512" : s == Simd::kAvx2 ? "avx2" : "scalar"; }

Napi::Value JsSimdLevel(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), Name(CurrentSimd())); }

Napi::Value JsSetSimdLevel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string want = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Simd level;
  if (want == "auto") level = g_best;
  else if (want == "scalar") level = Simd::kScalar;
  else if (want == "avx2") level = Simd::kAvx2;
  else if (want == "avx512") level = Simd::kAvx512;
  else {
    return Refuse(env, "level must be 'auto', 'avx512', 'avx2' or 'scalar'");
  }
  if (level > g_best) return Refuse(env, (std::string("this CPU has no ") + Name(level)).c_str());
  g_current = level;
  return Napi::String::New(env, Name(level));
}

}  // namespace

Simd CurrentSimd() { return g_current.load(std::memory_order_relaxed); }

void RegisterSimdLevel(Napi::Env env, Napi::Object exports) {
  Detect();
  exports.Set("simdLevel", Napi::Function::New(env, JsSimdLevel, "simdLevel"));
  exports.Set("setSimdLevel", Napi::Function::New(env, JsSetSimdLevel, "setSimdLevel"));
}

}  // namespace supsup
