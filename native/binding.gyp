{
  "targets": [
    {
      "target_name": "custos_native",
      "sources": ["src/addon.cc", "src/block_ops.cc", "src/read_worker.cc", "src/checksum.cc", "src/ewf_chunks.cc", "src/passthrough.cc"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "_FILE_OFFSET_BITS=64"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/addon.cc", "src/block_ops.cc", "src/read_worker.cc", "src/checksum.cc", "src/ewf_chunks.cc", "src/passthrough.cc"] }]
      ]
    }
  ]
}
