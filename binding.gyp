{
  "targets": [
    {
      "target_name": "supsup_kernels",
      "sources": ["native/supsup_kernels.cc", "native/simd_level.cc", "native/forward_bits.cc", "native/scores_multi.cc", "native/gather_slots.cc", "native/superposed_pass.cc", "native/scores_sparse.cc", "native/column_sums.cc", "native/train_gemm.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17", "-ffp-contract=off"] }
    }
  ]
}
