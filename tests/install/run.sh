#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR - `make test-install`.
#
# Installs BUILD_DIR into a temporary prefix (not the prefix it was configured
# with: the CMake package and ljs.pc must be relocatable), then builds
# tests/host_malloc.c against the installed package four ways and runs each:
#   cmake_shared  find_package(ljs) + ljs::ljs
#   cmake_static  find_package(ljs) + ljs::ljs_static
#   pc_shared     pkg-config --cflags --libs ljs
#   pc_static     pkg-config --static --libs ljs, with -l:libljs.a
# Each checks at run time (dladdr/dlsym) that the host's malloc is libc's;
# here readelf also checks that libc.so.6 precedes libmimalloc.so.2 in every
# NEEDED list that has both.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ljs-test-install.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work"; fi
prefix=$work/prefix
cc=${CC:-cc}

echo "--- install $build -> $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }
grep -v '^-- Up-to-date' "$work/install.log" | sed 's/^/    /'

echo "--- find_package(ljs)"
cmake -S "$src/tests/install" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
grep -E 'ljs ' "$work/cmake.log" || true
cmake --build "$work/cmake" -j"$(nproc 2>/dev/null || echo 2)"

echo "--- pkg-config ljs"
pcdir=$(dirname "$(find "$prefix" -name ljs.pc -print -quit)")
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
libdir=$(pkg-config --variable=libdir ljs)
cflags=$(pkg-config --cflags ljs)
libs=$(pkg-config --libs ljs)
slibs=$(pkg-config --static --libs ljs | sed 's/-lljs\b/-l:libljs.a/')
echo "    cflags:       $cflags"
echo "    libs:         $libs"
echo "    static libs:  $slibs"
# shellcheck disable=SC2086
$cc -std=c11 -D_GNU_SOURCE $cflags "$src/tests/host_malloc.c" -o "$work/pc_shared" \
    -Wl,-rpath,"$libdir" $libs -ldl
# shellcheck disable=SC2086
$cc -std=c11 -D_GNU_SOURCE $cflags "$src/tests/host_malloc.c" -o "$work/pc_static" $slibs -ldl

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
# libc.so.6 must come before libmimalloc.so.2 when an object needs both.
check_order() {
    local list=$1 what=$2 i=0 libc=-1 mi=-1 lib
    for lib in $list; do
        [[ $lib == libc.so.* ]] && ((libc < 0)) && libc=$i
        [[ $lib == libmimalloc.so.* ]] && ((mi < 0)) && mi=$i
        i=$((i + 1))
    done
    if ((mi >= 0 && (libc < 0 || libc > mi))); then
        echo "FAIL: $what: libmimalloc.so precedes libc.so in NEEDED: $list" >&2
        return 1
    fi
}

fail=0
so=$(find "$prefix" -name 'libljs.so.*.*' -print -quit)
echo "--- readelf -d $(basename "$so"): $(needed "$so")"
check_order "$(needed "$so")" "$(basename "$so")" || fail=1
for exe in "$work/cmake/consumer_shared" "$work/cmake/consumer_static" "$work/pc_shared" "$work/pc_static"; do
    name=$(basename "$exe")
    echo "--- $name"
    echo "    NEEDED: $(needed "$exe")"
    check_order "$(needed "$exe")" "$name" || fail=1
    if "$exe" | sed 's/^/    /'; then :; else
        echo "FAIL: $name exited non-zero" >&2
        fail=1
    fi
done
if ((fail)); then
    echo "test-install: FAILED" >&2
    exit 1
fi
echo "test-install: OK (4 consumers, host malloc is libc's in each)"
