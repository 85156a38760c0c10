// Binary search's candidate banks (contract: `gatherSlots` in src/core/kernels/mask-kernels.ts).
//
//   gatherSlots(bank, words, slots, out)
//
// Copies the masks of `slots` (in that order) into `out` as a fresh bank in the same 8-slot interleave, slot i
// of `out` = slots[i], the tail of the last block zeroed. Each binary-search round then scores and counts only
// its remaining candidates, packed densely, so the rounds cost k/2 + k/4 + … instead of k each.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernel_common.h"

namespace supsup {
namespace {

constexpr int kLanes = 8;

void GatherSlots(const uint32_t* bank, size_t words, const int32_t* slots, size_t n, uint32_t* out) {
  const size_t out_blocks = (n + kLanes - 1) / kLanes;
  ParallelFor(out_blocks, n * words < (size_t(1) << 16), [&](int, size_t ob) {
    const uint32_t* src[kLanes];
    for (int l = 0; l < kLanes; l++) {
      const size_t i = ob * kLanes + l;
      src[l] = i < n ? bank + (size_t(slots[i]) / kLanes) * words * kLanes + size_t(slots[i]) % kLanes : nullptr;
    }
    uint32_t* dst = out + ob * words * kLanes;
    for (size_t j = 0; j < words; j++)
      for (int l = 0; l < kLanes; l++) dst[j * kLanes + l] = src[l] ? src[l][j * kLanes] : 0;
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
  GatherSlots(bank, words, slots, nslots, out);
  return env.Undefined();
}

}  // namespace

void RegisterGatherSlots(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherSlots", Napi::Function::New(env, JsGatherSlots, "gatherSlots"));
}

}  // namespace supsup
