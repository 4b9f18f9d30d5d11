# Native addon for @fastsuspend/xen: libxenevtchn, libxenctrl, libxenguest (xc_domain_resume)
# and libxencall (raw domctl). Flags come from pkg-config (Debian: libxen-dev).
{
  "targets": [
    {
      "target_name": "xen",
      "sources": [
        "src/native/addon.cc",
        "src/native/errors.cc",
        "src/native/evtchn.cc",
        "src/native/control.cc",
        "src/native/lock.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I xencontrol xenguest xenevtchn xencall xentoollog | sed -e 's/-I//g')"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++20"],
      "cflags": ["<!@(pkg-config --cflags-only-other xencontrol xenguest xenevtchn xencall xentoollog)"],
      "cflags_cc": [
        "-std=gnu++17",
        "-fexceptions",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-Wno-missing-field-initializers"
      ],
      "libraries": [
        "<!@(pkg-config --libs xencontrol xenguest xenevtchn xencall xentoollog)"
      ]
    }
  ]
}
