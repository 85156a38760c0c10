// V for one example through a superposition given by its per-weight count (contract: `superposedPass` in
// src/core/kernels/mask-kernels.ts; reference: src/core/superposed-pass.ts, which this equals bit for bit:
// the same double operations in the same order, and the build contracts no multiply-add).
//
//   superposedForward(weights, sizes, counts, n, x, acts[, rows, x0, term])
//                                                                  a_0 = x, a_{l+1} = ReLU(a_l (W_l ⊙ C_l) / n), logits last
//   superposedBackward(weights, sizes, counts, n, acts, delta, v[, x0, delta0[, rows]])
//                                                                  V(w) = a_l[i] δ_l[j] W_l[i][j], δ back through W ⊙ C / n
//
// With x0 (the input's background value) layer 0's V is written from a_0[i] − x0, zero on background inputs, and
// delta0 receives δ_0: the rest of layer 0's share, x0 · Σ_j δ_0[j] Σ_i M[i][j] W[i][j], is the caller's
// (src/core/background-split.ts). x0 = 0 writes the plain V.
//
// With `rows` (Int32Array, one per row of every layer but the logits, layer 0's first) counts and V hold only
// some words of the mask (src/core/live-words.ts): row r's weights sit at rows[r] … rows[r] + n_{l+1} − 1 of
// them, and −1 marks a row of layer 0 they leave out, which only a background input (x_i = x0) may be. The
// forward then runs split too: layer 0 from x − x0 over the rows held, plus term[j] (n_1 doubles, the caller's
// x0 · Σ_i W[i][j] C[i][j] over all rows), before the division by n; V is not written on rows left out.
//
// weights: the base network's layers back to back ([in][out] each, P floats); counts: Uint16Array or
// Float32Array, P or more; acts: Float64Array of n_0 + … + n_L (each layer's input, then the logits); delta:
// Float64Array of n_L, ∂obj/∂logits (the caller's objective). Binary search calls the pair once a round,
// where the JavaScript loops cost ~2.5 ms a pass at P = 315,200 and these a few hundred µs.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstddef>
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

// Where counts and V hold the weights of `rows` (the layout above); rows[r] is row r's first weight.
struct Layout {
  const int32_t* rows = nullptr;  // null: the whole mask, row (l, i) at offset_l + i · n_{l+1}
  double x0 = 0;                  // the split's background value (0: none)
  const double* term = nullptr;   // the forward's layer-0 term (n_1 values), or null
  // Row i of a layer whose first row is number `first`, at `offset` in the whole mask: its position, or −1.
  inline __attribute__((always_inline)) ptrdiff_t At(size_t first, size_t i, const Shape& s) const {
    return rows ? ptrdiff_t(rows[first + i]) : ptrdiff_t(s.offset + i * s.out);
  }
};

// The loops are written so the compiler vectorises them across j without reordering any sum: each z[j] and
// each v[w] is its own chain. The one reduction across j (δ back) stays sequential, as in the reference.
template <class C>
inline __attribute__((always_inline)) void ForwardBody(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts, const Layout& layout) {
  double* a = acts;
  size_t first = 0;
  for (size_t l = 0; l < shapes.size(); l++) {
    const Shape& s = shapes[l];
    double* z = a + s.in;
    const double shift = l == 0 && layout.term ? layout.x0 : 0;
    std::fill(z, z + s.out, 0.0);
    for (size_t i = 0; i < s.in; i++) {
      const double ai = a[i] - shift;
      if (ai == 0) continue;
      const float* wr = w + s.offset + i * s.out;
      const C* cr = counts + layout.At(first, i, s);
      for (size_t j = 0; j < s.out; j++) z[j] += ai * double(wr[j]) * double(cr[j]);
    }
    if (l == 0 && layout.term)
      for (size_t j = 0; j < s.out; j++) z[j] += layout.term[j];
    for (size_t j = 0; j < s.out; j++) z[j] /= n;
    if (l + 1 < shapes.size())
      for (size_t j = 0; j < s.out; j++) z[j] = z[j] > 0 ? z[j] : 0;
    a = z;
    first += s.in;
  }
}

// starts[l]: layer l's first row (and its input's first value in acts).
template <class C>
inline __attribute__((always_inline)) void BackwardBody(const float* w, const C* counts, const std::vector<Shape>& shapes, double n,
                                                        const double* acts, const double* delta_last, float* v, double x0, double* delta0, const Layout& layout) {
  std::vector<size_t> starts(shapes.size());
  for (size_t l = 0, o = 0; l < shapes.size(); o += shapes[l].in, l++) starts[l] = o;
  std::vector<double> delta(delta_last, delta_last + shapes.back().out), back;
  for (size_t l = shapes.size(); l-- > 0;) {
    const Shape& s = shapes[l];
    const double* a = acts + starts[l];
    const double shift = l == 0 ? x0 : 0;
    for (size_t i = 0; i < s.in; i++) {
      const ptrdiff_t at = layout.At(starts[l], i, s);
      if (at < 0) continue;
      const double ai = a[i] - shift;
      const float* wr = w + s.offset + i * s.out;
      float* vr = v + at;
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
      const C* cr = counts + layout.At(starts[l], i, s);
      double sum = 0;
      for (size_t j = 0; j < s.out; j++) sum += double(wr[j]) * double(cr[j]) * delta[j];
      back[i] = sum / n;
    }
    delta.swap(back);
  }
}

template <class C>
void Forward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts, const Layout& o) {
  ForwardBody(w, counts, shapes, n, acts, o);
}
template <class C>
void Backward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0, const Layout& o) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0, o);
}

#if SUPSUP_HAS_X86
template <class C>
SUPSUP_AVX512 void Forward512(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts, const Layout& o) {
  ForwardBody(w, counts, shapes, n, acts, o);
}
template <class C>
SUPSUP_AVX512 void Backward512(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0, const Layout& o) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0, o);
}
template <class C>
SUPSUP_AVX2 void Forward256(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts, const Layout& o) {
  ForwardBody(w, counts, shapes, n, acts, o);
}
template <class C>
SUPSUP_AVX2 void Backward256(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0, const Layout& o) {
  BackwardBody(w, counts, shapes, n, acts, d, v, x0, d0, o);
}
#endif

template <class C>
void RunForward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, double* acts, const Layout& o) {
#if SUPSUP_HAS_X86
  const Simd simd = CurrentSimd();
  if (simd == Simd::kAvx512) return Forward512(w, counts, shapes, n, acts, o);
  if (simd == Simd::kAvx2) return Forward256(w, counts, shapes, n, acts, o);
#endif
  Forward(w, counts, shapes, n, acts, o);
}

template <class C>
void RunBackward(const float* w, const C* counts, const std::vector<Shape>& shapes, double n, const double* acts, const double* d, float* v, double x0, double* d0, const Layout& o) {
#if SUPSUP_HAS_X86
  const Simd simd = CurrentSimd();
  if (simd == Simd::kAvx512) return Backward512(w, counts, shapes, n, acts, d, v, x0, d0, o);
  if (simd == Simd::kAvx2) return Backward256(w, counts, shapes, n, acts, d, v, x0, d0, o);
#endif
  Backward(w, counts, shapes, n, acts, d, v, x0, d0, o);
}

// Shared argument checks: weights, sizes, counts (either type), n. Returns false after throwing.
struct Common {
  float* weights;
  std::vector<Shape> shapes;
  uint16_t* counts16 = nullptr;
  float* counts32 = nullptr;
  size_t counts_len;
  double n;
  size_t acts_len;
  size_t weights_len;  // P
};

bool ReadCommon(const Napi::CallbackInfo& info, Common& c) {
  Napi::Env env = info.Env();
  int32_t* sizes;
  size_t weights_len, nsizes;
  if (!Typed(info[0], napi_float32_array, c.weights, weights_len)) return Refuse(env, "weights must be a Float32Array"), false;
  if (!Typed(info[1], napi_int32_array, sizes, nsizes) || nsizes < 2) return Refuse(env, "sizes must be an Int32Array of at least 2 layer sizes"), false;
  if (std::any_of(sizes, sizes + nsizes, [](int32_t s) { return s <= 0; })) return Refuse(env, "layer sizes must be positive"), false;
  c.shapes = Shapes(sizes, nsizes);
  c.weights_len = c.shapes.back().offset + c.shapes.back().in * c.shapes.back().out;
  c.acts_len = 0;
  for (size_t l = 0; l < nsizes; l++) c.acts_len += size_t(sizes[l]);
  if (!Typed(info[2], napi_uint16_array, c.counts16, c.counts_len) && !Typed(info[2], napi_float32_array, c.counts32, c.counts_len))
    return Refuse(env, "counts must be a Uint16Array or a Float32Array"), false;
  if (!info[3].IsNumber() || !(info[3].As<Napi::Number>().DoubleValue() >= 1)) return Refuse(env, "n must be a number ≥ 1"), false;
  c.n = info[3].As<Napi::Number>().DoubleValue();
  if (weights_len < c.weights_len) return Refuse(env, "weights is shorter than the layers"), false;
  return true;
}

// The layout (info[at]: rows, or undefined for the whole mask) against the arrays it indexes: counts, and V of
// v_len values in the backward (SIZE_MAX in the forward): every row of a later layer held, layer 0's held or −1.
// False after throwing.
bool ReadLayout(const Napi::CallbackInfo& info, size_t at, const Common& c, size_t v_len, Layout& layout) {
  Napi::Env env = info.Env();
  if (info[at].IsUndefined()) {
    if (c.counts_len < c.weights_len) return Refuse(env, "counts is shorter than the layers"), false;
    if (v_len < c.weights_len) return Refuse(env, "v must be a Float32Array of P values"), false;
    return true;
  }
  const size_t held = std::min(c.counts_len, v_len);
  int32_t* rows;
  size_t len;
  if (!Typed(info[at], napi_int32_array, rows, len) || len < c.acts_len - c.shapes.back().out)
    return Refuse(env, "rows must be an Int32Array of one position per row of every layer"), false;
  for (size_t l = 0, r = 0; l < c.shapes.size(); l++)
    for (size_t i = 0; i < c.shapes[l].in; i++, r++) {
      if (rows[r] == -1 && l == 0) continue;
      if (rows[r] < 0 || size_t(rows[r]) + c.shapes[l].out > held) return Refuse(env, "a row's weights are outside counts or v"), false;
    }
  layout.rows = rows;
  return true;
}

bool ReadX0(const Napi::CallbackInfo& info, size_t at, double& x0) {
  if (!info[at].IsNumber() || !std::isfinite(info[at].As<Napi::Number>().DoubleValue())) return Refuse(info.Env(), "x0 must be a finite number"), false;
  x0 = info[at].As<Napi::Number>().DoubleValue();
  return true;
}

Napi::Value JsForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Common c;
  Layout layout;
  if (!ReadCommon(info, c) || !ReadLayout(info, 6, c, SIZE_MAX, layout)) return env.Undefined();
  float* x;
  double* acts;
  size_t x_len, acts_len, term_len;
  if (!Typed(info[4], napi_float32_array, x, x_len) || x_len < c.shapes[0].in) return Refuse(env, "x must be a Float32Array of n_0 values");
  if (!Typed(info[5], napi_float64_array, acts, acts_len) || acts_len < c.acts_len) return Refuse(env, "acts must be a Float64Array of n_0 + … + n_L values");
  if (layout.rows) {
    double* term;
    if (!ReadX0(info, 7, layout.x0)) return env.Undefined();
    if (!Typed(info[8], napi_float64_array, term, term_len) || term_len < c.shapes[0].out) return Refuse(env, "term must be a Float64Array of n_1 values");
    layout.term = term;
    for (size_t i = 0; i < c.shapes[0].in; i++)
      if (layout.rows[i] == -1 && double(x[i]) != layout.x0) return Refuse(env, "a row left out of counts must have x = x0");
  }
  std::copy(x, x + c.shapes[0].in, acts);
  if (c.counts16) RunForward(c.weights, c.counts16, c.shapes, c.n, acts, layout);
  else RunForward(c.weights, c.counts32, c.shapes, c.n, acts, layout);
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
  if (!Typed(info[6], napi_float32_array, v, v_len)) return Refuse(env, "v must be a Float32Array");
  Layout layout;
  if (!ReadLayout(info, 9, c, v_len, layout)) return env.Undefined();
  double x0 = 0, *delta0 = nullptr;
  size_t delta0_len;
  if (!info[7].IsUndefined()) {
    if (!ReadX0(info, 7, x0)) return env.Undefined();
    if (!Typed(info[8], napi_float64_array, delta0, delta0_len) || delta0_len < c.shapes[0].out) return Refuse(env, "delta0 must be a Float64Array of n_1 values");
  }
  if (layout.rows)
    for (size_t i = 0; i < c.shapes[0].in; i++)
      if (layout.rows[i] == -1 && acts[i] != x0) return Refuse(env, "a row left out of v must have x = x0");
  if (c.counts16) RunBackward(c.weights, c.counts16, c.shapes, c.n, acts, delta, v, x0, delta0, layout);
  else RunBackward(c.weights, c.counts32, c.shapes, c.n, acts, delta, v, x0, delta0, layout);
  return env.Undefined();
}

}  // namespace

void RegisterSuperposedPass(Napi::Env env, Napi::Object exports) {
  exports.Set("superposedForward", Napi::Function::New(env, JsForward, "superposedForward"));
  exports.Set("superposedBackward", Napi::Function::New(env, JsBackward, "superposedBackward"));
}

}  // namespace supsup
