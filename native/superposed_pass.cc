// V for one example through a superposition given by its per-weight count (contract: `superposedPass` in
// src/core/kernels/mask-kernels.ts; reference: src/core/superposed-pass.ts, which this equals bit for bit:
// the same double operations in the same order, and the build contracts no multiply-add).
//
//   superposedForward(weights, sizes, counts, n, x, acts)          a_0 = x, a_{l+1} = ReLU(a_l (W_l ⊙ C_l) / n), logits last
//   superposedBackward(weights, sizes, counts, n, acts, delta, v[, x0, delta0])
//                                                                  V(w) = a_l[i] δ_l[j] W_l[i][j], δ back through W ⊙ C / n
//
// With x0 (the input's background value) layer 0's V is written from a_0[i] − x0, zero on background inputs, and
// delta0 receives δ_0: the rest of layer 0's share, x0 · Σ_j δ_0[j] Σ_i M[i][j] W[i][j], is the caller's
// (src/core/background-split.ts). x0 = 0 writes the plain V.
//
// weights: the base network's layers back to back ([in][out] each, P floats); counts: Uint16Array or
// Float32Array, P or more; acts: Float64Array of n_0 + … + n_L (each layer's input, then the logits); delta:
// Float64Array of n_L, ∂obj/∂logits (the caller's objective). Binary search calls the pair once a round,
// where the JavaScript loops cost ~2.5 ms a pass at P = 315,200 and these a few hundred µs.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernel_common.h"

namespace supsup {
namespace {

struct Shape {
  size_t in, out, offset;
};

std::vector<Shape> Shapes(const int32_t* sizes, size_t nsizes) {
  std::vector<Shape> shapes;
  size_t offset = 0;
  for (size_t l = 0; l + 1 < nsizes; l++) {
    shapes.push_back({size_t(sizes[l]), size_t(sizes[l + 1]), offset});
    offset += size_t(sizes[l]) * size_t(sizes[l + 1]);
  }
  return shapes;
}

// The loops are written so the compiler vectorises them across j without reordering any sum: each z[j] and
// each v[w] is its own chain. The one reduction across j (δ back) stays sequential, as in the reference.
template <class C>
inline __attribute__((always_inline)) void ForwardBody(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts) {
  double* a = acts;
  for (size_t l = 0; l < shapes.size(); l++) {
    const Shape& s = shapes[l];
    double* z = a + s.in;
    std::fill(z, z + s.out, 0.0);
    for (size_t i = 0; i < s.in; i++) {
      const double ai = a[i];
      if (ai == 0) continue;
      const float* wr = w + s.offset + i * s.out;
      const C* cr = counts + s.offset + i * s.out;
      for (size_t j = 0; j < s.out; j++) z[j] += ai * double(wr[j]) * double(cr[j]);
    }
    for (size_t j = 0; j < s.out; j++) z[j] /= n;
    if (l + 1 < shapes.size())
      for (size_t j = 0; j < s.out; j++) z[j] = z[j] > 0 ? z[j] : 0;
    a = z;
  }
}

template <class C>
inline __attribute__((always_inline)) void BackwardBody(const float* w, const C* counts, const std::vector<Shape>& shapes, double n,
                                                        const double* acts, const double* delta_last, float* v, double x0, double* delta0) {
  std::vector<size_t> starts(shapes.size());
  for (size_t l = 0, o = 0; l < shapes.size(); o += shapes[l].in, l++) starts[l] = o;
  std::vector<double> delta(delta_last, delta_last + shapes.back().out), back;
  for (size_t l = shapes.size(); l-- > 0;) {
    const Shape& s = shapes[l];
    const double* a = acts + starts[l];
    const double shift = l == 0 ? x0 : 0;
    for (size_t i = 0; i < s.in; i++) {
      const double ai = a[i] - shift;
      const float* wr = w + s.offset + i * s.out;
      float* vr = v + s.offset + i * s.out;
      for (size_t j = 0; j < s.out; j++) vr[j] = float(ai * delta[j] * double(wr[j]));
    }
    if (l == 0) {
      if (delta0) std::copy(delta.begin(), delta.end(), delta0);
      break;
    }
    back.assign(s.in, 0.0);
    for (size_t i = 0; i < s.in; i++) {
      if (!(a[i] > 0)) continue;
      const float* wr = w + s.offset + i * s.out;
      const C* cr = counts + s.offset + i * s.out;
      double sum = 0;
      for (size_t j = 0; j < s.out; j++) sum += double(wr[j]) * double(cr[j]) * delta[j];
      back[i] = sum / n;
    }
    delta.swap(back);
  }
}

template <class C>
void Forward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts) {
  ForwardBody(w, counts, shapes, n, acts);
}
template <class C>
void Backward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0);
}

#if SUPSUP_HAS_X86
template <class C>
SUPSUP_AVX512 void Forward512(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts) {
  ForwardBody(w, counts, shapes, n, acts);
}
template <class C>
SUPSUP_AVX512 void Backward512(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0);
}
template <class C>
SUPSUP_AVX2 void Forward256(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts) {
  ForwardBody(w, counts, shapes, n, acts);
}
template <class C>
SUPSUP_AVX2 void Backward256(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0);
}
#endif

template <class C>
void RunForward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts) {
#if SUPSUP_HAS_X86
  const Simd simd = CurrentSimd();
  if (simd == Simd::kAvx512) return Forward512(w, counts, shapes, n, acts);
  if (simd == Simd::kAvx2) return Forward256(w, counts, shapes, n, acts);
#endif
  Forward(w, counts, shapes, n, acts);
}

template <class C>
void RunBackward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0) {
#if SUPSUP_HAS_X86
  const Simd simd = CurrentSimd();
  if (simd == Simd::kAvx512) return Backward512(w, counts, shapes, n, acts, d, v, x0, d0);
  if (simd == Simd::kAvx2) return Backward256(w, counts, shapes, n, acts, d, v, x0, d0);
#endif
  Backward(w, counts, shapes, n, acts, d, v, x0, d0);
}

// Shared argument checks: weights, sizes, counts (either type), n. Returns false after throwing.
struct Common {
  float* weights;
  std::vector<Shape> shapes;
  uint16_t* counts16 = nullptr;
  float* counts32 = nullptr;
  double n;
  size_t acts_len;
};

bool ReadCommon(const Napi::CallbackInfo& info, Common& c) {
  Napi::Env env = info.Env();
  int32_t* sizes;
  size_t weights_len, nsizes, counts_len;
  if (!Typed(info[0], napi_float32_array, c.weights, weights_len)) return Refuse(env, "weights must be a Float32Array"), false;
  if (!Typed(info[1], napi_int32_array, sizes, nsizes) || nsizes < 2) return Refuse(env, "sizes must be an Int32Array of at least 2 layer sizes"), false;
  if (std::any_of(sizes, sizes + nsizes, [](int32_t s) { return s <= 0; })) return Refuse(env, "layer sizes must be positive"), false;
  c.shapes = Shapes(sizes, nsizes);
  const size_t weights = c.shapes.back().offset + c.shapes.back().in * c.shapes.back().out;
  c.acts_len = 0;
  for (size_t l = 0; l < nsizes; l++) c.acts_len += size_t(sizes[l]);
  if (!Typed(info[2], napi_uint16_array, c.counts16, counts_len) && !Typed(info[2], napi_float32_array, c.counts32, counts_len))
    return Refuse(env, "counts must be a Uint16Array or a Float32Array"), false;
  if (!info[3].IsNumber() || !(info[3].As<Napi::Number>().DoubleValue() >= 1)) return Refuse(env, "n must be a number ≥ 1"), false;
  c.n = info[3].As<Napi::Number>().DoubleValue();
  if (weights_len < weights) return Refuse(env, "weights is shorter than the layers"), false;
  if (counts_len < weights) return Refuse(env, "counts is shorter than the layers"), false;
  return true;
}

Napi::Value JsForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  if (!ReadCommon(info, c)) return env.Undefined();
  float* x;
  double* acts;
  size_t x_len, acts_len;
  if (!Typed(info[4], napi_float32_array, x, x_len) || x_len < c.shapes[0].in) return Refuse(env, "x must be a Float32Array of n_0 values");
  if (!Typed(info[5], napi_float64_array, acts, acts_len) || acts_len < c.acts_len) return Refuse(env, "acts must be a Float64Array of n_0 + … + n_L values");
  std::copy(x, x + c.shapes[0].in, acts);
  if (c.counts16) RunForward(c.weights, c.counts16, c.shapes, c.n, acts);
  else RunForward(c.weights, c.counts32, c.shapes, c.n, acts);
  return env.Undefined();
}

Napi::Value JsBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  if (!ReadCommon(info, c)) return env.Undefined();
  double *acts, *delta;
  float* v;
  size_t acts_len, delta_len, v_len;
  if (!Typed(info[4], napi_float64_array, acts, acts_len) || acts_len < c.acts_len) return Refuse(env, "acts must be a Float64Array of n_0 + … + n_L values");
  if (!Typed(info[5], napi_float64_array, delta, delta_len) || delta_len < c.shapes.back().out) return Refuse(env, "delta must be a Float64Array of n_L values");
  const size_t weights = c.shapes.back().offset + c.shapes.back().in * c.shapes.back().out;
  if (!Typed(info[6], napi_float32_array, v, v_len) || v_len < weights) return Refuse(env, "v must be a Float32Array of P values");
  double x0 = 0, *delta0 = nullptr;
  size_t delta0_len;
  if (!info[7].IsUndefined()) {
    if (!info[7].IsNumber() || !std::isfinite(info[7].As<Napi::Number>().DoubleValue())) return Refuse(env, "x0 must be a finite number");
    x0 = info[7].As<Napi::Number>().DoubleValue();
    if (!Typed(info[8], napi_float64_array, delta0, delta0_len) || delta0_len < c.shapes[0].out) return Refuse(env, "delta0 must be a Float64Array of n_1 values");
  }
  if (c.counts16) RunBackward(c.weights, c.counts16, c.shapes, c.n, acts, delta, v, x0, delta0);
  else RunBackward(c.weights, c.counts32, c.shapes, c.n, acts, delta, v, x0, delta0);
  return env.Undefined();
}

}  // namespace

void RegisterSuperposedPass(Napi::Env env, Napi::Object exports) {
  exports.Set("superposedForward", Napi::Function::New(env, JsForward, "superposedForward"));
  exports.Set("superposedBackward", Napi::Function::New(env, JsBackward, "superposedBackward"));
}

}  // namespace supsup
