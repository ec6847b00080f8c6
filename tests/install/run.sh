#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR - `make test-install`.
#
# Installs BUILD_DIR into a temporary prefix (not the prefix it was configured
# with: the CMake package and the .pc files must be relocatable), then builds
# the README's embedding example (examples/embed/embed.c, runs 60 frames) and
# tests/host_malloc.c (the host's malloc is still libc's) with each link line
# README.md's "Linking" section shows, and checks what `ldd` shows against
# what the README says:
#   cmake_shared  find_package(ljs) + ljs::ljs          libljs.so.0.1 from the prefix, shared Lua
#   cmake_static  find_package(ljs) + ljs::ljs_static   no libljs.so, no liblua5.4.so
#   pc_shared     the README's `pkg-config ... ljs` line        as cmake_shared
#   pc_static     the README's `pkg-config ... ljs-static` line as cmake_static
# The pkg-config lines are taken from README.md itself and run as written
# (game.c replaced by the consumer's source), so the README cannot drift.
# Also: LICENSE installed, no ck flags (-D__x86_64__) in any consumer's
# compile flags, and libc.so.6 ahead of libmimalloc.so.2 in every NEEDED list.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ljs-test-install.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work"; fi
prefix=$work/prefix
fail=0
bad() {
    echo "FAIL: $*" >&2
    fail=1
}

echo "--- install $build -> $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }
grep -v '^-- Up-to-date' "$work/install.log" | sed 's/^/    /'

echo "--- licence"
lic=$(find "$prefix" -path '*/doc/ljs/LICENSE' -print -quit)
if [[ -z $lic ]] || ! grep -q '^MIT License' "$lic"; then bad "no MIT LICENSE under share/doc/ljs"; fi
grep -q 'MIT License' "$prefix/include/ljs.h" || bad "ljs.h carries no licence notice"
echo "    ${lic#"$prefix"/}, and the notice in include/ljs.h"

echo "--- find_package(ljs)"
# The CMake targets the README names must be the ones the consumer uses.
for t in 'ljs::ljs)' 'ljs::ljs_static)'; do
    grep -qF "target_link_libraries(game PRIVATE $t" "$src/README.md" || bad "README.md does not show $t"
done
cmake -S "$src/tests/install" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DLJS_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" || { cat "$work/cmake.log"; exit 1; }
grep -E 'ljs ' "$work/cmake.log" || true
cmake --build "$work/cmake" -j"$(nproc 2>/dev/null || echo 2)" >"$work/build.log" || { cat "$work/build.log"; exit 1; }
if grep -rq -- '-D__x86_64__' "$work/cmake/CMakeFiles"/*/flags.make; then bad "ck's -D__x86_64__ reached a CMake consumer's flags"; fi

echo "--- pkg-config (the README's lines)"
pcdir=$(dirname "$(find "$prefix" -name ljs.pc -print -quit)")
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
for m in ljs ljs-static; do
    echo "    $m: cflags '$(pkg-config --cflags $m)' libs '$(pkg-config --libs $m)'"
    if pkg-config --cflags $m | grep -q -- '-D__x86_64__'; then bad "pkg-config --cflags $m leaks -D__x86_64__"; fi
    if [[ "$(pkg-config --libs $m)" != "$(pkg-config --static --libs $m)" && $m == ljs-static ]]; then
        bad "ljs-static differs with --static"
    fi
done
line_shared=$(grep -E '^cc game\.c .*pkg-config --cflags --libs ljs\) .*-o game$' "$src/README.md" || true)
line_static=$(grep -E '^cc game\.c .*pkg-config --cflags --libs ljs-static\) .*-o game$' "$src/README.md" || true)
[[ -n $line_shared && -n $line_static ]] || { bad "README.md shows no 'cc game.c \$(pkg-config ...) -o game' lines"; exit 1; }
build_pc() { # NAME LINE SOURCE
    local line=${2//game.c/$3}
    line=${line//-o game/-o $work/$1}
    echo "    $line"
    (cd "$work" && eval "$line") || bad "$1: the README's line did not link"
}
for c in embed host_malloc; do
    s=$src/examples/embed/embed.c
    [[ $c == host_malloc ]] && s=$src/tests/host_malloc.c
    build_pc "pc_shared_$c" "$line_shared" "$s"
    build_pc "pc_static_$c" "$line_static" "$s"
done
# What the README says --static does to the shared module: libljs.so with
# the shared Lua, never a static Lua beside it.
if pkg-config --static --libs ljs | grep -q 'liblua5.4.a'; then bad "pkg-config --static ljs names liblua5.4.a beside libljs.so"; fi

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
# libc.so.6 must come before libmimalloc.so.2 when an object needs both.
check_order() {
    local list=$1 what=$2 i=0 libc=-1 mi=-1 lib
    for lib in $list; do
        [[ $lib == libc.so.* ]] && ((libc < 0)) && libc=$i
        [[ $lib == libmimalloc.so.* ]] && ((mi < 0)) && mi=$i
        i=$((i + 1))
    done
    if ((mi >= 0 && (libc < 0 || libc > mi))); then bad "$what: libmimalloc.so precedes libc.so in NEEDED: $list"; fi
}
# What README.md's "Linking" section says ldd shows.
check_ldd() { # EXE KIND
    local exe=$1 kind=$2 out
    out=$(ldd "$exe")
    if grep -q 'not found' <<<"$out"; then bad "$(basename "$exe"): ldd: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"; fi
    if [[ $kind == shared ]]; then
        grep -qF "libljs.so.$soversion => $prefix/" <<<"$out" || bad "$(basename "$exe"): ldd shows no libljs.so.$soversion from $prefix"
        grep -q 'liblua5\.4\.so' <<<"$out" || bad "$(basename "$exe"): ldd shows no liblua5.4.so (libljs.so links the shared Lua)"
    else
        if grep -qE 'libljs\.so|liblua5\.4\.so' <<<"$out"; then bad "$(basename "$exe"): static link, but ldd shows $(grep -oE 'lib(ljs|lua5\.4)\.so[.0-9]*' <<<"$out" | tr '\n' ' ')"; fi
    fi
    grep -oE '^\s*lib[^ ]+' <<<"$out" | tr -d '\t ' | tr '\n' ' '
}

so=$(find "$prefix" -name 'libljs.so.*.*.*' -print -quit)
# The soname the README promises: major.minor before 1.0 (ljs.h's version).
major=$(sed -n 's/^#define LJS_VERSION_MAJOR \([0-9]*\)/\1/p' "$prefix/include/ljs.h")
minor=$(sed -n 's/^#define LJS_VERSION_MINOR \([0-9]*\)/\1/p' "$prefix/include/ljs.h")
soversion=$major
((major == 0)) && soversion=$major.$minor
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "libljs.so.$soversion" ]] || bad "soname is $soname, the README says libljs.so.$soversion"
echo "--- soname $soname"
echo "--- readelf -d $(basename "$so"): $(needed "$so")"
check_order "$(needed "$so")" "$(basename "$so")"
spin=$src/examples/embed/spin.lua
for exe in cmake/consumer_shared cmake/consumer_static cmake/embed_shared cmake/embed_static \
    pc_shared_host_malloc pc_static_host_malloc pc_shared_embed pc_static_embed; do
    name=$(basename "$exe")
    kind=static
    [[ $name == *shared* ]] && kind=shared
    echo "--- $name"
    echo "    NEEDED: $(needed "$work/$exe")"
    echo "    ldd:    $(check_ldd "$work/$exe" "$kind")"
    check_order "$(needed "$work/$exe")" "$name"
    arg=()
    [[ $name == *embed* ]] && arg=("$spin")
    if "$work/$exe" "${arg[@]}" 2>&1 | sed 's/^/    /'; then :; else bad "$name exited non-zero"; fi
done
if ((fail)); then
    echo "test-install: FAILED" >&2
    exit 1
fi
echo "test-install: OK (8 consumers: the README's 4 link lines x {embed example, host malloc check}; ldd as the README says)"
