{
  "targets": [
    {
      "target_name": "byol_align_native",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/tensor.cc",
        "native/ops.cc",
        "native/autograd.cc",
        "native/runtime.cc",
        "native/autocast.cc",
        "native/cpu_block_cache.cc",
        "native/distributed.cc",
        "native/same_host_memory.cc"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node native/find-libtorch.cjs include)"
      ],
      "libraries": ["<!@(node native/find-libtorch.cjs libs)"],
      # NAPI_EXPERIMENTAL enables "basic" finalizers that free tensors during GC itself (see
      # native/tensor.cc); Node 20.x headers ship them behind this flag.
      # NODE_ADDON_API_CPP_EXCEPTIONS_ALL makes node-addon-api (>= 8.5) turn any C++ exception
      # that leaves a callback into a JS Error; without it only Napi::Error is caught and a
      # c10::Error reaching the callback's edge calls std::terminate. Every entry point converts
      # its own errors first (native/holder.h, guarded()), with better messages; this is the net.
      "defines": [
        "NAPI_EXPERIMENTAL",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "_GLIBCXX_USE_CXX11_ABI=<!(node native/find-libtorch.cjs abi)"
      ],
      # torch.distributed's Gloo classes are compiled only under USE_C10D_GLOO, and need the Gloo
      # headers (Debian: libgloo-dev); without them native/distributed.cc builds a stub that says why.
      "conditions": [
        ["'<!(node native/find-libtorch.cjs gloo)'=='1'", { "defines": ["USE_C10D_GLOO"] }]
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    }
  ]
}
