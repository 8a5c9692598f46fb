# Secondary build (node-gyp) of the same addon as CMakeLists.txt (the primary build, cmake-js): the same
# CPU sources, defines and flags; `dupn build-native` runs it for platforms without a prebuild. It lives
# here, not at the package root, because npm (npm ci in particular) runs `node-gyp rebuild` as the install
# script of any installed package with a root binding.gyp, "gypfile": false notwithstanding.
#
# gyp cannot give one source file its own flags, so each wide-ISA kernel is a static library of its own,
# compiled with only that instruction set's flags and linked into `dupn`. Never -march=native.
{
  'variables': {
    # Absolute, so the recipe works from any directory (and from node_modules/dupn once installed).
    'dupn_napi_include': "<!(node -p \"require('path').dirname(require.resolve('node-addon-api/package.json'))\")",
  },
  'target_defaults': {
    'defines': [
      'NAPI_VERSION=8',
      'NAPI_CPP_EXCEPTIONS',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
      'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',  # see CMakeLists.txt
    ],
    'include_dirs': [
      'include',
      '<(dupn_napi_include)',
    ],
    # Exact IEEE arithmetic: no fast-math, and no contraction outside the explicit FMA kernels.
    'cflags': ['-O3', '-fno-fast-math', '-ffp-contract=off', '-fno-math-errno', '-Wall', '-Wextra', '-fPIC'],
    'cflags!': ['-fno-exceptions'],
    'cflags_cc': ['-std=gnu++17', '-fexceptions', '-frtti'],
    'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++1y', '-std=gnu++20'],
    'xcode_settings': {
      'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
      'GCC_ENABLE_CPP_RTTI': 'YES',
      'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
      'MACOSX_DEPLOYMENT_TARGET': '10.15',
      'OTHER_CFLAGS': ['-O3', '-fno-fast-math', '-ffp-contract=off', '-fno-math-errno'],
    },
    'msvs_settings': {
      'VCCLCompilerTool': {
        'ExceptionHandling': 1,
        'AdditionalOptions': ['/std:c++17', '/fp:precise'],
      },
    },
    'conditions': [
      # The baseline is x86-64-v2; wider sets only inside their own kernel libraries. No MMX (CMakeLists.txt
      # says why).
      ['target_arch=="x64" and OS!="win"', {
        'cflags': ['-msse4.2', '-mpopcnt', '-mno-mmx'],
        'xcode_settings': { 'OTHER_CFLAGS': ['-msse4.2', '-mpopcnt', '-mno-mmx'] },
      }],
    ],
  },
  'targets': [
    {
      'target_name': 'dupn',
      'sources': [
        'src/core/fingerprint64.cpp',
        'src/core/json_numbers.cpp',
        'src/core/model.cpp',
        'src/core/pack.cpp',
        'src/core/encode.cpp',
        'src/core/heads.cpp',
        'src/core/thread_pool.cpp',
        'src/core/projection_cache.cpp',
        'src/core/train/trainer.cpp',
        'src/core/train/backward.cpp',
        'src/core/train/head_backward.cpp',
        'src/core/train/optimizer.cpp',
        'src/kernels/baseline.cpp',
        'src/kernels/dispatch.cpp',
        'src/napi/addon.cpp',
        'src/napi/async_job.cpp',
        'src/napi/spec.cpp',
        'src/napi/trainer_wrap.cpp',
        'src/napi/hash.cpp',
        'src/napi/json_numbers.cpp',
        'src/napi/kernels_binding.cpp',
        'src/napi/map_file.cpp',
        'src/napi/model_wrap.cpp',
      ],
      'libraries': ['-lpthread'],
      'conditions': [
        ['target_arch=="x64"', {
          'dependencies': ['dupn_kernels_avx2', 'dupn_kernels_avx512', 'dupn_kernels_avx512_bf16'],
        }],
        ['OS=="win" or OS=="mac"', {
          'libraries!': ['-lpthread'],
        }],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'dupn_kernels_avx2',
          'type': 'static_library',
          'sources': ['src/kernels/avx2.cpp'],
          'cflags': ['-mavx2', '-mfma'],
          'xcode_settings': { 'OTHER_CFLAGS': ['-mavx2', '-mfma'] },
          'msvs_settings': { 'VCCLCompilerTool': { 'AdditionalOptions': ['/arch:AVX2'] } },
        },
        {
          'target_name': 'dupn_kernels_avx512',
          'type': 'static_library',
          'sources': ['src/kernels/avx512.cpp'],
          'cflags': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mavx2', '-mfma', '-Wno-maybe-uninitialized', '-Wno-uninitialized'],
          'xcode_settings': {
            'OTHER_CFLAGS': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mavx2', '-mfma'],
          },
          'msvs_settings': { 'VCCLCompilerTool': { 'AdditionalOptions': ['/arch:AVX512'] } },
        },
        {
          'target_name': 'dupn_kernels_avx512_bf16',
          'type': 'static_library',
          'sources': ['src/kernels/avx512_bf16.cpp'],
          'cflags': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mavx512bf16', '-mavx2', '-mfma', '-Wno-maybe-uninitialized', '-Wno-uninitialized'],
          'xcode_settings': {
            'OTHER_CFLAGS': ['-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl', '-mavx512bf16', '-mavx2', '-mfma'],
          },
          'msvs_settings': { 'VCCLCompilerTool': { 'AdditionalOptions': ['/arch:AVX512'] } },
        },
      ],
    }],
  ],
}
