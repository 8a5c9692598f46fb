#!/usr/bin/env bash
# Builds the binaries that ship inside the npm tarball (`npm run prebuild`; `prepack` runs it):
#   prebuilds/linux-x64/dupn.glibc.node    x86-64-v2 baseline, AVX2 / AVX-512 kernels chosen at run time
#   prebuilds/linux-arm64/dupn.glibc.node  baseline kernels only, Debian's aarch64 cross compiler
#   prebuilds/manifest.json                what was built from which sources, and each binary's glibc floor
#
# Both are compiled inside a Debian 11 (bullseye, glibc 2.31) root made with debootstrap, so that they link
# against an old glibc and load on any newer one; the host's glibc would leak its newest symbol versions
# into the binary. The C++ runtime is linked in statically (CMake option DUPN_PORTABLE). Needs Linux, root
# (chroot) and Debian's package mirror the first time; later runs reuse the root and skip the build when
# nothing it depends on changed.
#
# `--check`: exit 0 when prebuilds/ is up to date with the sources, 1 otherwise (builds nothing).
# Environment: DUPN_PREBUILD_ROOT (where the build root lives; default .prebuild/bullseye),
# DUPN_PREBUILD_FORCE=1 (rebuild even when up to date), DUPN_GLIBC_FLOOR (highest GLIBC_x.y symbol
# version allowed; default 2.28, the floor of Node 20's own Linux binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
root=${DUPN_PREBUILD_ROOT:-$repo/.prebuild/bullseye}
floor=${DUPN_GLIBC_FLOOR:-2.28}
suite=bullseye
packages=g++,cmake,make,g++-aarch64-linux-gnu,binutils
out=$repo/prebuilds

say() { printf 'prebuild: %s\n' "$*" >&2; }

# Everything the binaries are made of; a change to any of it means a rebuild.
inputs_hash() {
  {
    find native -type f -name '*.[ch]*' | LC_ALL=C sort | xargs sha256sum
    sha256sum CMakeLists.txt scripts/prebuild.sh
    sha256sum node_modules/node-addon-api/*.h node_modules/node-api-headers/include/*.h
    echo "$suite $packages $floor"
  } | sha256sum | cut -c1-16
}

[[ $(uname -s) == Linux ]] || { say "needs Linux (a chroot); on this system build from source instead (README)"; exit 1; }
for f in node_modules/node-addon-api/napi.h node_modules/node-api-headers/include/node_api.h; do
  [[ -f $f ]] || { say "$f is missing: run npm ci first"; exit 1; }
done

hash=$(inputs_hash)
fresh() {
  [[ -f $out/manifest.json ]] && grep -q "\"inputs\": \"$hash\"" "$out/manifest.json" &&
    [[ -f $out/linux-x64/dupn.glibc.node && -f $out/linux-arm64/dupn.glibc.node ]]
}
if [[ ${1:-} == --check ]]; then
  fresh && { say "up to date (inputs $hash)"; exit 0; }
  say "prebuilds/ is missing or was built from other sources than these (inputs $hash)"
  exit 1
fi
if [[ ${DUPN_PREBUILD_FORCE:-} != 1 ]] && fresh; then
  say "up to date (inputs $hash)"
  exit 0
fi

if [[ ! -x $root/usr/bin/aarch64-linux-gnu-g++ || ! -x $root/usr/bin/cmake ]]; then
  [[ $(id -u) == 0 ]] || { say "making the build root needs root (debootstrap, chroot)"; exit 1; }
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  say "making a Debian $suite build root in $root (once; about a minute)"
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" http://deb.debian.org/debian >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; say "debootstrap failed (log: $root.log)"; exit 1; }
fi

# The sources go into the root as a copy: a chroot cannot see the repository.
src=$root/src
rm -rf "$src"
mkdir -p "$src/include"
cp -r native CMakeLists.txt "$src/"
cp node_modules/node-api-headers/include/*.h node_modules/node-addon-api/*.h "$src/include/"

build() { # <arch> <cmake args…>
  local arch=$1
  shift
  say "building linux-$arch"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh -ec "
    cmake -S /src -B /src/build-$arch -DCMAKE_BUILD_TYPE=Release -DDUPN_PORTABLE=ON \
      -DCMAKE_JS_INC=/src/include -DNODE_ADDON_API_DIR=/src/include $* >/dev/null
    cmake --build /src/build-$arch -j$(nproc) >/dev/null"
}
build x64
build arm64 -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++

# The newest GLIBC_x.y that a binary asks for (its floor), and what else it needs from the system.
glibc_floor() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1; }
needed() { objdump -p "$1" | awk '/NEEDED/ {print $2}' | paste -sd, -; }

manifest=()
tmp=$(mktemp -d "$repo/.prebuild/out.XXXXXX")
for arch in x64 arm64; do
  bin=$src/build-$arch/dupn.node
  want=$([[ $arch == x64 ]] && echo x86-64 || echo aarch64)
  file "$bin" | grep -q "$want" || { say "$bin is not an $want binary: $(file -b "$bin")"; exit 1; }
  got=$(glibc_floor "$bin")
  if [[ $(printf '%s\n%s\n' "$got" "$floor" | sort -V | tail -n 1) != "$floor" ]]; then
    say "linux-$arch needs GLIBC_$got, newer than the floor $floor:"
    objdump -T "$bin" | grep -E "GLIBC_$got" >&2
    exit 1
  fi
  # MMX registers alias the x87 stack: code that touches them without emms breaks the caller's long double
  # math (CMakeLists.txt, -mno-mmx).
  if [[ $arch == x64 ]] && objdump -d "$bin" | grep -qE '%mm[0-7]'; then
    say "linux-x64 uses MMX registers"
    exit 1
  fi
  libs=$(needed "$bin")
  if grep -qE 'libstdc\+\+|libgcc_s' <<<"$libs"; then
    say "linux-$arch still links the C++ runtime dynamically ($libs)"
    exit 1
  fi
  mkdir -p "$tmp/linux-$arch"
  cp "$bin" "$tmp/linux-$arch/dupn.glibc.node"
  size=$(stat -c %s "$bin")
  say "linux-$arch: $size bytes, glibc ≥ $got, needs $libs"
  manifest+=("    \"linux-$arch\": { \"file\": \"linux-$arch/dupn.glibc.node\", \"libc\": \"glibc\", \"glibc\": \"$got\", \"bytes\": $size, \"needed\": \"$libs\" }")
done
{
  printf '{\n  "inputs": "%s",\n  "builtWith": "Debian %s: %s",\n  "binaries": {\n' "$hash" "$suite" \
    "$(chroot "$root" g++ --version | head -n 1)"
  (IFS=$'\n'; echo "${manifest[*]}" | sed '$!s/$/,/')
  printf '  }\n}\n'
} >"$tmp/manifest.json"
# Replace the old set only once the new one is whole.
rm -rf "$out.old"
[[ -d $out ]] && mv "$out" "$out.old"
mv "$tmp" "$out"
rm -rf "$out.old"
say "wrote $out (inputs $hash)"
