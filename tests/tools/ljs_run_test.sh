#!/usr/bin/env bash
# tests/tools/ljs_run_test.sh LJS_RUN CASE - what ljs-run promises a user,
# one CTest test per CASE (registered by the top-level CMakeLists.txt):
#   broken        a scene with a broken script runs without it (exit 0, digest)
#                 and reports the script's file:line
#   strict        --strict exits 1 on the same scene, before any frame
#   fixed         fixing the broken file while the scene runs loads it and
#                 creates its entities (waits for ljs-run's own output, no sleeps
#                 that decide the outcome)
#   report        --report FILE: the report's LJS_REPORT names FILE (source host)
#   screen        console lines print entity ids as index:generation, the
#                 progress line is labelled, and the summary's bytecode counts
#                 match the report's "cache" object
#   unknown_env   a misspelt LJS_* variable is warned about with the closest name
#   workers_zero  LJS_WORKERS=0 means "one worker per online CPU"; --print-config
#                 refuses an invalid LJS_GC_MODE instead of printing it
#   save_load     --save at frame 30 then --load with another worker count and
#                 30 more frames gives the digest of 60 frames in one run
set -euo pipefail
run=$1
case_=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/ljs-run-test.XXXXXX")
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
fail() {
    echo "FAIL ($case_): $*" >&2
    for f in "$work"/out "$work"/err; do [[ -f $f ]] && { echo "--- $f"; cat "$f"; }; done >&2
    exit 1
}

scene=$work/scene
mkdir -p "$scene"
cat >"$scene/mover.lua" <<'LUA'
return {
  fields = { x = 0.0, vx = 1.0 },
  update = function(self, dt) self.x = self.x + self.vx * dt end,
}
LUA
cat >"$scene/talker.lua" <<'LUA'
return {
  fields = { n = 0 },
  update = function(self, dt)
    self.n = self.n + 1
    if frame() == 3 then log("hello from talker") end
  end,
}
LUA
# A syntax error on line 3.
printf 'return {\n  fields = { y = 0.0 },\n  update = function(self, dt) self.y = = 1 end,\n}\n' >"$scene/broken.lua"
printf 'mover 10 fixed\ntalker 1 fixed\nbroken 5 fixed\n' >"$scene/scene.txt"
fixed_source='return {
  fields = { y = 0.0 },
  update = function(self, dt) self.y = self.y + 1 end,
}
'

case $case_ in
broken)
    "$run" "$scene" --frames 20 --workers 2 >"$work/out" 2>"$work/err" || fail "exit status $? (want 0)"
    grep -q 'broken.lua:3:' "$work/err" || fail "no broken.lua:3: error on stderr"
    grep -q "5 'broken' entities wait for broken.lua" "$work/err" || fail "the waiting entities are not reported"
    grep -qE '^digest: [0-9a-f]{16}$' "$work/out" || fail "no digest: the scene did not run"
    grep -q ', 11 entities$' "$work/out" || fail "want the 11 entities of the loaded scripts"
    grep -q 'broken.lua never loaded' "$work/err" || fail "the end of the run does not say broken.lua never loaded"
    ;;
strict)
    if "$run" "$scene" --frames 20 --strict >"$work/out" 2>"$work/err"; then fail "exit status 0 (want 1)"; else rc=$?; fi
    ((rc == 1)) || fail "exit status $rc (want 1)"
    grep -q 'broken.lua:3:' "$work/err" || fail "no broken.lua:3: error"
    grep -q -- '--strict' "$work/err" || fail "no word that --strict ended the run"
    if grep -q '^digest' "$work/out"; then fail "--strict ran frames"; fi
    ;;
fixed)
    "$run" "$scene" --seconds 100 --workers 2 >"$work/out" 2>"$work/err" &
    pid=$!
    # Wait (bounded by the CTest timeout) for the scene to run, then fix the
    # file the way editors save: write a temporary file, rename it over.
    until grep -q '^scene ' "$work/out"; do kill -0 $pid 2>/dev/null || fail "ljs-run ended early"; sleep 0.05; done
    printf '%s' "$fixed_source" >"$scene/.broken.lua.tmp"
    mv "$scene/.broken.lua.tmp" "$scene/broken.lua"
    until grep -q 'loaded .*broken.lua (fixed): 5 entities created' "$work/out"; do
        kill -0 $pid 2>/dev/null || fail "ljs-run ended before loading the fixed file"
        sleep 0.05
    done
    kill -INT $pid
    wait $pid || fail "exit status $? after Ctrl-C (want 0)"
    pid=
    grep -q ', 16 entities$' "$work/out" || fail "want 16 entities at the end"
    if grep -q 'never loaded' "$work/err"; then fail "says never loaded after the fix"; fi
    ;;
report)
    rm "$scene/broken.lua"
    printf 'mover 10 fixed\n' >"$scene/scene.txt"
    "$run" "$scene" --frames 5 --quiet --report "$work/r.json" >"$work/out" 2>"$work/err" || fail "exit status $?"
    grep -qF "\"LJS_REPORT\":{\"value\":\"$work/r.json\",\"source\":\"host\"}" "$work/r.json" ||
        fail "the report's LJS_REPORT is not its own file: $(grep -o '"LJS_REPORT":{[^}]*}' "$work/r.json")"
    ;;
screen)
    rm "$scene/broken.lua"
    printf 'return { fields = { k = 0 }, update = function(self) if frame() == 2 then error("boom") end end }\n' >"$scene/oops.lua"
    printf 'mover 10 fixed\ntalker 1 fixed\noops 1 fixed\n' >"$scene/scene.txt"
    "$run" "$scene" --frames 5 --workers 2 --report "$work/r.json" >"$work/out" 2>"$work/err" || fail "exit status $?"
    grep -qE '^\[info\] frame 3 talker entity 10:1: hello from talker$' "$work/err" ||
        fail "console line without the entity as index:generation (want 'entity 10:1')"
    grep -qE '^\[error\] frame 2 oops entity 11:1: update of entity 11:1: .*oops.lua:1: boom' "$work/err" ||
        fail "script error without the entity as index:generation (want 'update of entity 11:1')"
    rm "$scene/oops.lua"
    printf 'mover 10 fixed\ntalker 1 fixed\n' >"$scene/scene.txt"
    if grep -qE '#[0-9]{6,}' "$work/err"; then fail "a raw 64-bit entity handle was printed"; fi
    line=$(grep '^caches' "$work/out") || fail "no caches line in the summary"
    json=$(tr -d '\n' <"$work/r.json" | grep -o '"cache":{[^}]*}')
    for k in compiles hits misses loads; do
        v=$(grep -o "\"$k\":[0-9]*" <<<"$json" | cut -d: -f2)
        case $k in
        compiles) want="$v compiles" ;; hits) want="$v hits" ;; misses) want="$v misses" ;; loads) want="$v loads into worker states" ;;
        esac
        grep -qF "$want" <<<"$line" || fail "summary '$line' does not say '$want' as the report does ($json)"
    done
    # A run long enough for one progress line: every field labelled.
    "$run" "$scene" --seconds 1.2 --workers 2 >"$work/out" 2>"$work/err" || fail "exit status $?"
    grep -qE '^progress: frame [0-9]+ \| [0-9.]+ frames/s \| updates [0-9]+/s \| events [0-9]+/s \| ms per frame: update [0-9.]+, events [0-9.]+ \| Lua KiB per worker w0 [0-9]+, w1 [0-9]+ \| script errors 0 \| entities 11$' "$work/out" ||
        fail "no labelled progress line"
    ;;
unknown_env)
    rm "$scene/broken.lua"
    printf 'mover 10 fixed\n' >"$scene/scene.txt"
    LJS_WORKER=4 "$run" "$scene" --frames 2 >"$work/out" 2>"$work/err" || fail "exit status $?"
    grep -q "LJS_WORKER.*not an ljs variable.*did you mean LJS_WORKERS" "$work/err" || fail "no warning naming LJS_WORKER and LJS_WORKERS"
    ;;
workers_zero)
    if LJS_GC_MODE=bogus "$run" --print-config >"$work/out" 2>"$work/err"; then fail "--print-config accepted LJS_GC_MODE=bogus"; fi
    grep -q "LJS_GC_MODE='bogus': not a GC mode" "$work/err" || fail "--print-config does not explain LJS_GC_MODE=bogus"
    LJS_WORKERS=0 "$run" --print-config >"$work/out" 2>"$work/err" || fail "LJS_WORKERS=0 refused: $(cat "$work/err")"
    cpus=$(getconf _NPROCESSORS_ONLN)
    grep -qE "^LJS_WORKERS +0 +environment .* = $cpus CPUs" "$work/out" || fail "--print-config does not show 0 = $cpus CPUs"
    ;;
save_load)
    rm "$scene/broken.lua"
    printf 'mover 10 fixed\ntalker 1 fixed\n' >"$scene/scene.txt"
    "$run" "$scene" --frames 60 --workers 2 --quiet >"$work/out" 2>"$work/err" || fail "exit status $?"
    whole=$(grep '^digest:' "$work/out") || fail "no digest for the 60-frame run"
    "$run" "$scene" --frames 30 --workers 2 --quiet --save "$work/w.ljsw" >"$work/out" 2>"$work/err" || fail "--save: exit status $?"
    [[ -s $work/w.ljsw ]] || fail "--save wrote nothing"
    "$run" "$scene" --frames 30 --workers 1 --quiet --load "$work/w.ljsw" >"$work/out" 2>"$work/err" || fail "--load: exit status $?"
    [[ $(grep '^digest:' "$work/out") == "$whole" ]] || fail "saved at 30 + 30 loaded frames != 60 frames ($whole)"
    printf 'junk' >"$work/bad.ljsw"
    if "$run" "$scene" --frames 1 --quiet --load "$work/bad.ljsw" >"$work/out" 2>"$work/err"; then fail "a corrupt save was accepted"; fi
    grep -q 'corrupt or truncated snapshot' "$work/err" || fail "the corrupt save is not explained"
    ;;
*)
    echo "unknown case $case_" >&2
    exit 2
    ;;
esac
echo "ok: $case_"
