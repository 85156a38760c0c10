// Training's matrix products (native/train_gemm.cc): adds matmul to the exports; its path is the addon's SIMD level (simd_level.cc).
#pragma once

#include <napi.h>

void RegisterTrainGemm(Napi::Env env, Napi::Object exports);
