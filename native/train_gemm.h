// Training's matrix products (native/train_gemm.cc): adds matmul, matmulPath and setMatmulPath to the exports.
#pragma once

#include <napi.h>

void RegisterTrainGemm(Napi::Env env, Napi::Object exports);
