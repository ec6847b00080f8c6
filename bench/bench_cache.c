/* bench_cache.c - the shared bytecode cache: loading from bytecode against
 * compiling from source in every worker.
 *
 * Side by side in one process, medians over ctx->reps repetitions:
 *  (1) per-load cost of a small (~30 lines) and a large (~2,000 lines of
 *      generated, varied gameplay Lua) script: ljs_script_load +
 *      ljs_script_unload of the same file in a runtime of ctx->workers
 *      workers, (a) cache off (every worker compiles the text on every load),
 *      (b) cache on with debug info, (c) cache on, stripped. With the cache on
 *      the untimed warm-up load compiles and every timed load is a hit. A
 *      load also reads and hashes the file, runs the module chunk and builds
 *      the natural-form wrappers in every worker: that is in every path.
 *      Beside it the pure per-state cost: luaL_loadbufferx of the text vs of
 *      its lua_dump (kept, stripped) in one plain lua_State.
 *  (2) a project of 1,000 distinct generated scripts (small to medium):
 *      start = create a runtime and load them all. Cold: cache on, sources
 *      never seen (each compiles once). Warm: a second runtime created while
 *      the cold one is still alive, loading the same files (all hits). Also
 *      the cache-off start, for reference. Every rep salts the sources so its
 *      cold start is really cold. A disk-warm start (LJS_CACHE_DIR) will be
 *      one more start_kind_t.
 * Every run with the cache on is checked against ljs_cache_stats(): as many
 * compiles as distinct sources, and hits > 0; otherwise the case fails.
 * Counters are read as deltas within one runtime's lifetime, so they are
 * right whether the process-wide cache outlives its runtimes or not.
 * Sources are written to a mkdtemp directory and removed after.
 */
#include "bench/bench.h"

#include <ljs.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdarg.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REPS 64

/* ========================================================================
 * A growable text buffer
 * ======================================================================== */

typedef struct sbuf_s {
    char *p;
    size_t len, cap;
    unsigned lines;
    int oom;
} sbuf_t;

static int sb_reserve(sbuf_t *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void sb_add(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    for (size_t i = b->len; i < b->len + (size_t)n; i++)
        b->lines += b->p[i] == '\n';
    b->len += (size_t)n;
}

static void sb_reset(sbuf_t *b)
{
    b->len = 0;
    b->lines = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

static void sb_free(sbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* lua_dump writer into an sbuf_t. */
static int sb_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    sbuf_t *b = ud;
    if (sb_reserve(b, sz) != 0)
        return 1;
    memcpy(b->p + b->len, p, sz);
    b->len += sz;
    return 0;
}

/* ========================================================================
 * Scripts
 * ======================================================================== */

/* The small script: fields, an update, two handlers (~30 lines). The salt
 * line makes every run's source distinct. */
static const char small_src[] = "local min, max = math.min, math.max\n"
                                "local SPEED, REGEN = 40.0, 2.5\n"
                                "local function clamp(v, lo, hi)\n"
                                "  if v < lo then return lo elseif v > hi then return hi end\n"
                                "  return v\n"
                                "end\n"
                                "return {\n"
                                "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 100.0, ammo = 0 },\n"
                                "  tags = { \"npc\" },\n"
                                "  update = function(self, dt)\n"
                                "    local x = self.x + self.vx * dt\n"
                                "    local y = self.y + self.vy * dt\n"
                                "    if x < 0.0 or x > 1000.0 then self.vx = -self.vx end\n"
                                "    if y < 0.0 or y > 1000.0 then self.vy = -self.vy end\n"
                                "    self.x = clamp(x, 0.0, 1000.0)\n"
                                "    self.y = clamp(y, 0.0, 1000.0)\n"
                                "    if self.hp < 100.0 then\n"
                                "      self.hp = min(100.0, self.hp + REGEN * dt)\n"
                                "    end\n"
                                "  end,\n"
                                "  on_hit = function(self, payload, sender)\n"
                                "    local damage = type(payload) == \"table\" and payload.damage or 1.0\n"
                                "    self.hp = max(0.0, self.hp - damage)\n"
                                "    self.vx, self.vy = self.vx * 1.5, self.vy * 1.5\n"
                                "  end,\n"
                                "  on_refill = function(self, payload, sender)\n"
                                "    self.ammo = clamp(self.ammo + (tonumber(payload) or 10), 0, 99)\n"
                                "    if self.ammo > 50 then self.vx = self.vx * 0.5 end\n"
                                "    self.vy = clamp(self.vy, -SPEED, SPEED)\n"
                                "  end,\n"
                                "}\n";

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(bench_rng(s) % n);
}

static const char *rng_pick(uint64_t *s, const char *const *words, size_t n)
{
    return words[bench_rng(s) % n];
}

#define PICK(s, words) rng_pick((s), (words), sizeof(words) / sizeof((words)[0]))

static const char *const items[] = {"sword", "shield", "bow", "potion", "scroll", "gem",
                                    "ring",  "cloak",  "axe", "staff",  "herb",   "key"};
static const char *const rarities[] = {"common", "uncommon", "rare", "epic"};
static const char *const moods[] = {"dying", "wounded", "hurt", "fine", "healthy", "angry", "calm"};
static const char *const greetings[] = {
    "Hello, {who}.",        "Well met, {who}!",   "What do you want, {who}?",
    "Stay a while, {who}.", "Move along, {who}.", "Ah, {who} again."};
static const char *const seps[] = {"=", ":", "-"};
static const char *const kinds[] = {"order", "quest", "trade", "spawn", "dialog"};

/* Top-level locals of a generated chunk stay under Lua's 200: past this
 * budget declarations go into the `lib` table. */
#define LOCAL_BUDGET 120

typedef struct gen_s {
    sbuf_t *b;
    uint64_t rng;
    unsigned locals;
} gen_t;

/* 1 if `n` more top-level locals fit (and takes them), else 0: declare in lib. */
static int gen_local(gen_t *g, unsigned n)
{
    if (g->locals + n > LOCAL_BUDGET)
        return 0;
    g->locals += n;
    return 1;
}

static void gen_vector(gen_t *g, unsigned k)
{
    sb_add(g->b, "%ssteer_%u(x, y, tx, ty, speed)\n", gen_local(g, 1) ? "local function " : "function lib.",
           k);
    sb_add(g->b, "  local dx, dy = tx - x, ty - y\n  local d = sqrt(dx * dx + dy * dy)\n");
    sb_add(g->b, "  if d < %g then\n    return 0.0, 0.0\n  end\n", 0.001 * (1 + rng_below(&g->rng, 9)));
    sb_add(g->b, "  local s = min(speed, d * %g)\n", 0.1 * (1 + rng_below(&g->rng, 9)));
    sb_add(g->b, "  return dx / d * s, dy / d * s\nend\n");
}

static void gen_table(gen_t *g, unsigned k)
{
    sb_add(g->b, "%sloot_%u = {\n", gen_local(g, 1) ? "local " : "lib.", k);
    unsigned n = 4 + rng_below(&g->rng, 7);
    for (unsigned i = 0; i < n; i++)
        sb_add(
            g->b,
            "  { name = \"%s_%u\", weight = %u, rarity = \"%s\", value = %u, tags = { \"%s\", \"%s\" } },\n",
            PICK(&g->rng, items), i, 1 + rng_below(&g->rng, 20), PICK(&g->rng, rarities),
            5 + rng_below(&g->rng, 500), PICK(&g->rng, moods), PICK(&g->rng, kinds));
    sb_add(g->b, "}\n");
}

static void gen_describe(gen_t *g, unsigned k)
{
    unsigned lo = 10 + rng_below(&g->rng, 30), hi = lo + 20 + rng_below(&g->rng, 40);
    sb_add(g->b, "%sdescribe_%u(name, hp, level)\n", gen_local(g, 1) ? "local function " : "function lib.",
           k);
    sb_add(g->b, "  local parts = {}\n");
    sb_add(g->b,
           "  parts[#parts + 1] = fmt(\"%%s (lv %%d)\", upper(sub(name, 1, 1)) .. sub(name, 2), level)\n");
    sb_add(g->b, "  if hp < %u then\n    parts[#parts + 1] = \"%s\"\n", lo, PICK(&g->rng, moods));
    sb_add(g->b, "  elseif hp < %u then\n    parts[#parts + 1] = \"%s\"\n", hi, PICK(&g->rng, moods));
    sb_add(g->b, "  else\n    parts[#parts + 1] = \"%s\"\n  end\n", PICK(&g->rng, moods));
    sb_add(g->b, "  local s = concat(parts, \", \")\n  s = s:gsub(\"%%s+\", \" \")\n");
    sb_add(g->b, "  return s .. rep(\"!\", level %% %u)\nend\n", 2 + rng_below(&g->rng, 4));
}

static void gen_think(gen_t *g, unsigned k)
{
    uint64_t *r = &g->rng;
    sb_add(g->b, "%sthink_%u(state, t, hp, enemy_dist)\n",
           gen_local(g, 1) ? "local function " : "function lib.", k);
    sb_add(g->b, "  if state == \"idle\" then\n    if enemy_dist < %u.0 then\n      return \"alert\", 0.0\n",
           20 + rng_below(r, 80));
    sb_add(g->b, "    elseif t > %u.5 then\n      return \"patrol\", 0.0\n    end\n", 1 + rng_below(r, 9));
    sb_add(g->b,
           "  elseif state == \"patrol\" then\n    if enemy_dist < %u.0 then\n      return \"chase\", 0.0\n"
           "    end\n",
           10 + rng_below(r, 60));
    sb_add(g->b, "  elseif state == \"chase\" then\n    if hp < %u.0 then\n      return \"flee\", 0.0\n",
           5 + rng_below(r, 40));
    sb_add(g->b, "    elseif enemy_dist < %u.0 then\n      return \"attack\", 0.0\n    end\n",
           1 + rng_below(r, 5));
    sb_add(g->b,
           "  elseif state == \"attack\" then\n    if enemy_dist > %u.0 then\n      return \"chase\", 0.0\n"
           "    end\n",
           3 + rng_below(r, 8));
    sb_add(g->b, "  elseif state == \"flee\" and hp > %u.0 then\n    return \"idle\", 0.0\n  end\n",
           50 + rng_below(r, 40));
    sb_add(g->b, "  return state, t\nend\n");
}

static void gen_timer(gen_t *g, unsigned k)
{
    int loc = gen_local(g, 2);
    sb_add(g->b, "%smake_timer_%u(period, limit)\n", loc ? "local function " : "function lib.", k);
    sb_add(g->b,
           "  local acc, fired = 0.0, 0\n  return function(dt)\n    acc = acc + dt\n"
           "    if acc >= period then\n      acc = acc - period\n      fired = fired + 1\n"
           "      if limit and fired >= limit then\n        fired = 0\n        return true, \"expired\"\n"
           "      end\n      return true, \"tick\"\n    end\n    return false, nil\n  end\nend\n");
    sb_add(g->b, "%stimer_%u = %smake_timer_%u(%g, %u)\n", loc ? "local " : "lib.", k, loc ? "" : "lib.", k,
           0.25 * (1 + rng_below(&g->rng, 16)), 1 + rng_below(&g->rng, 10));
}

static void gen_score(gen_t *g, unsigned k)
{
    sb_add(g->b, "%sscore_%u(items, bias)\n", gen_local(g, 1) ? "local function " : "function lib.", k);
    sb_add(g->b, "  local best, best_score, total = nil, -math.huge, 0\n  for i, it in ipairs(items) do\n");
    sb_add(g->b, "    local s = (it.value or 0) * %g + (it.weight or 1) * bias\n",
           0.5 + rng_below(&g->rng, 8));
    sb_add(g->b, "    if it.rarity == \"%s\" then\n      s = s * %g\n    end\n", PICK(&g->rng, rarities),
           1.25 + rng_below(&g->rng, 4));
    sb_add(g->b,
           "    total = total + s\n    if s > best_score then\n      best, best_score = it, s\n    end\n"
           "  end\n  return best, total / max(1, #items)\nend\n");
}

static void gen_parse(gen_t *g, unsigned k)
{
    const char *kind = PICK(&g->rng, kinds);
    sb_add(g->b, "%sparse_%u(line)\n", gen_local(g, 1) ? "local function " : "function lib.", k);
    sb_add(g->b, "  local out, n = {}, 0\n  for key, value in line:gmatch(\"(%%w+)%s(%%w+)\") do\n",
           PICK(&g->rng, seps));
    sb_add(g->b, "    local num = tonumber(value)\n    out[key] = num or value\n    n = n + 1\n  end\n");
    sb_add(g->b, "  if n == 0 then\n    return nil, \"empty %s line\"\n  end\n", kind);
    sb_add(g->b, "  out.kind = \"%s\"\n  return out, n\nend\n", kind);
}

static void gen_dialogue(gen_t *g, unsigned k)
{
    int loc = gen_local(g, 2);
    const char *ref = loc ? "" : "lib.";
    sb_add(g->b, "%slines_%u = {\n  greet = { \"%s\", \"%s\", \"%s\" },\n  bye = { \"%s\", \"%s\" },\n}\n",
           loc ? "local " : "lib.", k, PICK(&g->rng, greetings), PICK(&g->rng, greetings),
           PICK(&g->rng, greetings), PICK(&g->rng, greetings), PICK(&g->rng, greetings));
    sb_add(g->b, "%ssay_%u(who, mood, n)\n", loc ? "local function " : "function lib.", k);
    sb_add(g->b, "  local pool = %slines_%u[mood] or %slines_%u.greet\n", ref, k, ref, k);
    sb_add(g->b, "  local line = pool[(n %% #pool) + 1]\n  return (line:gsub(\"{who}\", who))\nend\n");
}

typedef void (*gen_block_fn)(gen_t *g, unsigned k);

static const gen_block_fn blocks[] = {gen_vector, gen_table, gen_describe, gen_think,
                                      gen_timer,  gen_score, gen_parse,    gen_dialogue};

/* Fields a generated script may declare, one type per name across scripts. */
static const char *const extra_fields[] = {"vx = 0.0",    "vy = 0.0",  "armor = 0.0",  "ammo = 0",
                                           "level = 1",   "score = 0", "alive = true", "angry = false",
                                           "timer = 0.0", "gold = 0"};
static const char *const tags[] = {"npc", "enemy", "pickup", "vehicle", "boss", "trigger"};

/* A generated module of about `target_lines` lines: helper blocks of every
 * kind in random order, then the module table (fields, update, handlers).
 * The salt goes into the first line. */
static void gen_script(sbuf_t *b, uint64_t seed, unsigned target_lines, const char *salt)
{
    gen_t g = {b, seed, 0};
    sb_reset(b);
    sb_add(b, "-- %s\n-- generated gameplay script %llu\n", salt, (unsigned long long)seed);
    sb_add(b, "local floor, sqrt, min, max, abs = math.floor, math.sqrt, math.min, math.max, math.abs\n"
              "local fmt, sub, upper, rep = string.format, string.sub, string.upper, string.rep\n"
              "local concat, insert = table.concat, table.insert\nlocal lib = {}\n");
    g.locals = 13;
    unsigned footer = 25;
    for (unsigned k = 0; b->lines + footer < target_lines || k == 0; k++)
        blocks[rng_below(&g.rng, sizeof blocks / sizeof blocks[0])](&g, k);
    sb_add(b, "return {\n  fields = { x = 0.0, y = 0.0, hp = 100.0");
    unsigned nextra = 1 + rng_below(&g.rng, 4), first = rng_below(&g.rng, 10);
    for (unsigned i = 0; i < nextra; i++)
        sb_add(b, ", %s", extra_fields[(first + i * 3) % 10]);
    sb_add(b, " },\n  tags = { \"%s\" },\n  lib = lib,\n", PICK(&g.rng, tags));
    sb_add(b,
           "  update = function(self, dt)\n    local x, y, hp = self.x, self.y, self.hp\n"
           "    x = x + dt * %g\n    if x > 1000.0 then\n      x = x - 1000.0\n    end\n",
           1.0 + rng_below(&g.rng, 50));
    sb_add(b,
           "    y = y + abs(x - 500.0) * dt * %g\n    if y > 1000.0 then\n      y = floor(y) - 1000.0\n"
           "    end\n",
           0.001 * (1 + rng_below(&g.rng, 9)));
    sb_add(b,
           "    if hp < 100.0 then\n      hp = min(100.0, hp + dt * %g)\n    end\n"
           "    self.x, self.y, self.hp = x, y, hp\n  end,\n",
           0.5 + rng_below(&g.rng, 5));
    sb_add(b,
           "  on_hit = function(self, payload, sender)\n"
           "    local damage = type(payload) == \"table\" and payload.damage or 1.0\n"
           "    self.hp = max(0.0, self.hp - damage)\n  end,\n"
           "  on_heal = function(self, payload, sender)\n"
           "    self.hp = min(100.0, self.hp + (tonumber(payload) or %u.0))\n  end,\n}\n",
           5 + rng_below(&g.rng, 20));
}

/* ========================================================================
 * Runtimes and the cache's counters
 * ======================================================================== */

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench cache: %s: %s: %s\n", what, ljs_errname(rc), ljs_last_error());
    return -1;
}

static int runtime_new_dir(unsigned workers, uint32_t cache, uint32_t strip, const char *cache_dir,
                           const char *what, ljs_runtime_t **out)
{
    ljs_config_t cfg;
    *out = NULL;
    int rc = ljs_config_init(&cfg);
    if (rc == LJS_OK) {
        cfg.workers = workers;
        cfg.cache = cache;
        cfg.strip_bytecode = strip;
        snprintf(cfg.cache_dir, sizeof cfg.cache_dir, "%s", cache_dir);
        rc = ljs_runtime_create(&cfg, out);
    }
    return rc == LJS_OK ? 0 : fail(what, rc);
}

static int runtime_new(unsigned workers, uint32_t cache, uint32_t strip, const char *what,
                       ljs_runtime_t **out)
{
    return runtime_new_dir(workers, cache, strip, "", what, out);
}

static int cache_snap(const ljs_runtime_t *rt, const char *what, ljs_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = ljs_cache_stats(rt, out);
    return rc == LJS_OK ? 0 : fail(what, rc);
}

/* Counters gathered over one scenario (deltas). */
typedef struct cache_delta_s {
    uint64_t compiles, hits, disk_hits;
    double compile_ms;
} cache_delta_t;

static void cache_add(cache_delta_t *d, const ljs_cache_stats_t *before, const ljs_cache_stats_t *after)
{
    d->compiles += after->compiles - before->compiles;
    d->hits += after->hits - before->hits;
    d->disk_hits += after->disk_hits - before->disk_hits;
    d->compile_ms += after->compile_ms - before->compile_ms;
}

/* A cache-on scenario must compile each distinct source once and hit. */
static int cache_check(const char *what, const cache_delta_t *d, uint64_t distinct)
{
    if (d->compiles == distinct && d->hits > 0)
        return 0;
    fprintf(stderr,
            "bench cache: cache check failed: %s: %llu compiles for %llu distinct sources, %llu hits "
            "(want compiles == sources, hits > 0)\n",
            what, (unsigned long long)d->compiles, (unsigned long long)distinct, (unsigned long long)d->hits);
    return -1;
}

/* ========================================================================
 * (1) Per-load cost
 * ======================================================================== */

typedef struct variant_s {
    const char *label;
    uint32_t cache, strip;
} variant_t;

enum { V_COMPILE, V_CACHED, V_STRIPPED, NVARIANTS };

static const variant_t variants[NVARIANTS] = {{"compile", 0, 0}, {"cached", 1, 0}, {"stripped", 1, 1}};

/* Median ms per load+unload of `path` over `loads` loads per rep, after one
 * untimed warm-up load (with the cache on: the compile). */
static int measure_loads(const bench_ctx_t *ctx, const char *what, const char *path, const variant_t *v,
                         unsigned loads, double *ms, cache_delta_t *d)
{
    ljs_runtime_t *rt;
    ljs_cache_stats_t before, after;
    ljs_script_t s;
    double per[MAX_REPS];
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
    if (runtime_new(ctx->workers, v->cache, v->strip, what, &rt) != 0)
        return -1;
    int rc = cache_snap(rt, what, &before);
    for (int rep = -1; rep < reps && rc == 0; rep++) {
        unsigned n = rep < 0 ? 1 : loads;
        uint64_t t0 = bench_now_ns();
        for (unsigned i = 0; i < n && rc == 0; i++) {
            int e = ljs_script_load(rt, path, &s);
            if (e == LJS_OK)
                e = ljs_script_unload(rt, s);
            if (e != LJS_OK)
                rc = fail(what, e);
        }
        if (rep >= 0)
            per[rep] = (double)(bench_now_ns() - t0) * 1e-6 / (double)n;
    }
    if (rc == 0 && (rc = cache_snap(rt, what, &after)) == 0) {
        cache_add(d, &before, &after);
        *ms = bench_median(per, (size_t)reps);
    }
    ljs_runtime_destroy(rt);
    return rc;
}

/* us per lua_pcall of the module chunk (loaded untimed from `bc`): what
 * running it costs every worker on every load, whatever the chunk's form. */
static int measure_run(lua_State *L, const sbuf_t *bc, unsigned iters, double *us)
{
    uint64_t spent = 0;
    lua_gc(L, LUA_GCCOLLECT);
    for (unsigned i = 0; i < iters; i++) {
        if (luaL_loadbufferx(L, bc->p, bc->len, "@raw.lua", "b") != LUA_OK) {
            fprintf(stderr, "bench cache: raw load: %s\n", lua_tostring(L, -1));
            return -1;
        }
        uint64_t t0 = bench_now_ns();
        int st = lua_pcall(L, 0, 1, 0);
        spent += bench_now_ns() - t0;
        if (st != LUA_OK) {
            fprintf(stderr, "bench cache: raw run: %s\n", lua_tostring(L, -1));
            return -1;
        }
        lua_pop(L, 1);
    }
    *us = (double)spent * 1e-3 / (double)iters;
    return 0;
}

/* Pure per-state cost in one plain lua_State: us per luaL_loadbufferx of the
 * text (out[0]), of its lua_dump with debug info (out[1]) and stripped
 * (out[2]); sizes[] are the bytes of each. out[3]: us per run of the loaded
 * module chunk (full standard library instead of ljs' sandbox copy). */
static int measure_raw(const bench_ctx_t *ctx, const char *src, size_t len, unsigned iters, double out[4],
                       size_t sizes[3])
{
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
    lua_State *L = luaL_newstate();
    sbuf_t dump[2] = {{0}, {0}};
    int rc = L == NULL ? -1 : 0;
    if (rc == 0 && luaL_loadbufferx(L, src, len, "@raw.lua", "t") == LUA_OK) {
        for (int strip = 0; strip < 2; strip++)
            if (lua_dump(L, sb_writer, &dump[strip], strip) != 0 || dump[strip].oom)
                rc = -1;
        lua_pop(L, 1);
    } else if (rc == 0) {
        fprintf(stderr, "bench cache: raw: %s\n", lua_tostring(L, -1));
        rc = -1;
    }
    const char *buf[3] = {src, dump[0].p, dump[1].p};
    const size_t blen[3] = {len, dump[0].len, dump[1].len};
    for (int k = 0; k < 3 && rc == 0; k++) {
        double per[MAX_REPS];
        for (int rep = 0; rep < reps && rc == 0; rep++) {
            lua_gc(L, LUA_GCCOLLECT);
            uint64_t t0 = bench_now_ns();
            for (unsigned i = 0; i < iters; i++) {
                if (luaL_loadbufferx(L, buf[k], blen[k], "@raw.lua", k ? "b" : "t") != LUA_OK) {
                    fprintf(stderr, "bench cache: raw load: %s\n", lua_tostring(L, -1));
                    rc = -1;
                    break;
                }
                lua_pop(L, 1);
            }
            per[rep] = (double)(bench_now_ns() - t0) * 1e-3 / (double)iters;
        }
        if (rc == 0)
            out[k] = bench_median(per, (size_t)reps);
        sizes[k] = blen[k];
    }
    if (rc == 0) {
        double per[MAX_REPS];
        luaL_openlibs(L);
        for (int rep = 0; rep < reps && rc == 0; rep++)
            rc = measure_run(L, &dump[1], iters, &per[rep]);
        if (rc == 0)
            out[3] = bench_median(per, (size_t)reps);
    }
    if (L != NULL)
        lua_close(L);
    sb_free(&dump[0]);
    sb_free(&dump[1]);
    return rc;
}

static double ratio(double a, double b)
{
    return b > 0.0 ? a / b : 0.0;
}

typedef struct size_spec_s {
    const char *name; /* "small", "large" */
    unsigned loads;   /* loads per rep */
    unsigned iters;   /* raw loads per rep */
} size_spec_t;

/* Figure and ratio names, [size][variant]. */
static const char *const load_fig[2][NVARIANTS] = {
    {"load_ms_small_compile", "load_ms_small_cached", "load_ms_small_stripped"},
    {"load_ms_large_compile", "load_ms_large_cached", "load_ms_large_stripped"}};
static const char *const raw_fig[2][3] = {
    {"raw_load_us_small_text", "raw_load_us_small_bytecode", "raw_load_us_small_stripped"},
    {"raw_load_us_large_text", "raw_load_us_large_bytecode", "raw_load_us_large_stripped"}};
static const char *const bytes_fig[2][3] = {
    {"bytes_small_source", "bytes_small_bytecode", "bytes_small_stripped"},
    {"bytes_large_source", "bytes_large_bytecode", "bytes_large_stripped"}};
static const char *const run_fig[2] = {"raw_run_us_small", "raw_run_us_large"};
static const char *const lines_fig[2] = {"lines_small", "lines_large"};
static const char *const cached_ratio[2] = {"cached_vs_compile_small", "cached_vs_compile_large"};
static const char *const stripped_ratio[2] = {"stripped_vs_compile_small", "stripped_vs_compile_large"};
static const char *const raw_ratio[2][2] = {{"raw_load_vs_compile_small", "raw_stripped_vs_compile_small"},
                                            {"raw_load_vs_compile_large", "raw_stripped_vs_compile_large"}};

#define LARGE_LINES 2000

/* Part (1). Returns -1 on an error, 1 if only a cache check failed. */
static int run_per_load(const bench_ctx_t *ctx, const char *dir, uint64_t nonce, bench_result_t *res)
{
    const size_spec_t sizes[2] = {{"small", ctx->quick ? 50 : 400, ctx->quick ? 500 : 4000},
                                  {"large", ctx->quick ? 5 : 40, ctx->quick ? 10 : 100}};
    sbuf_t src = {0};
    cache_delta_t total = {0};
    int rc = 0, bad = 0;
    char path[512], what[128], salt[96];
    for (int si = 0; si < 2 && rc == 0; si++) {
        double ms[NVARIANTS] = {0}, raw[4] = {0};
        size_t bytes[3] = {0};
        for (int vi = 0; vi < NVARIANTS && rc == 0; vi++) {
            const variant_t *v = &variants[vi];
            /* Each variant its own source: no hit can come from another. */
            snprintf(salt, sizeof salt, "ljs-bench cache %s %s %llu", sizes[si].name, v->label,
                     (unsigned long long)nonce);
            if (si == 0) {
                sb_reset(&src);
                sb_add(&src, "-- %s\n%s", salt, small_src);
            } else {
                gen_script(&src, 0x5eed0000u + (uint64_t)vi, LARGE_LINES, salt);
            }
            snprintf(path, sizeof path, "%s/%s_%s.lua", dir, sizes[si].name, v->label);
            snprintf(what, sizeof what, "%s %s", sizes[si].name, v->label);
            if (src.oom || bench_write(path, src.p, src.len) != 0) {
                fprintf(stderr, "bench cache: cannot write %s\n", path);
                rc = -1;
                break;
            }
            if (vi == V_COMPILE) {
                bench_figure(res, lines_fig[si], (double)src.lines);
                rc = measure_raw(ctx, src.p, src.len, sizes[si].iters, raw, bytes);
            }
            cache_delta_t d = {0};
            if (rc == 0)
                rc = measure_loads(ctx, what, path, v, sizes[si].loads, &ms[vi], &d);
            if (rc == 0 && v->cache) {
                bad |= cache_check(what, &d, 1) != 0;
                total.compiles += d.compiles;
                total.hits += d.hits;
            }
        }
        if (rc != 0)
            break;
        for (int vi = 0; vi < NVARIANTS; vi++)
            bench_figure(res, load_fig[si][vi], ms[vi]);
        for (int k = 0; k < 3; k++)
            bench_figure(res, raw_fig[si][k], raw[k]);
        bench_figure(res, run_fig[si], raw[3]);
        for (int k = 0; k < 3; k++)
            bench_figure(res, bytes_fig[si][k], (double)bytes[k]);
        bench_ratio(res, cached_ratio[si], ratio(ms[V_COMPILE], ms[V_CACHED]));
        bench_ratio(res, stripped_ratio[si], ratio(ms[V_COMPILE], ms[V_STRIPPED]));
        bench_ratio(res, raw_ratio[si][0], ratio(raw[0], raw[1]));
        bench_ratio(res, raw_ratio[si][1], ratio(raw[0], raw[2]));
    }
    if (rc == 0) {
        bench_figure(res, "load_cache_compiles", (double)total.compiles);
        bench_figure(res, "load_cache_hits", (double)total.hits);
    }
    sb_free(&src);
    return rc != 0 ? -1 : bad;
}

/* ========================================================================
 * (2) A project of many scripts: cold and warm start
 * ======================================================================== */

typedef enum start_kind_e {
    START_NOCACHE, /* cache off: every worker compiles every script */
    START_COLD,    /* cache on, sources never seen: each compiles once */
    START_WARM,    /* cache on, another live runtime holds the same scripts */
    /* With LJS_CACHE_DIR and no runtime alive before (the process-wide
     * cache is gone, as in a new process): an empty directory, then the
     * directory the cold start filled. */
    START_COLD_DISK,
    START_WARM_DISK,
    NSTARTS
} start_kind_t;

static const char *const start_label[NSTARTS] = {"nocache start", "cold start", "warm start",
                                                 "cold disk start", "warm disk start"};

typedef struct project_s {
    const char *dir;
    unsigned n;
} project_t;

static void project_path(const project_t *p, unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/p%04u.lua", p->dir, i);
}

/* Write the project's scripts, salted so that no cache has seen them.
 * Sizes vary from ~30 to ~300 lines (same seeds every rep). */
static int project_write(const project_t *p, const char *salt, uint64_t *lines)
{
    sbuf_t src = {0};
    char path[512];
    int rc = 0;
    *lines = 0;
    for (unsigned i = 0; i < p->n && rc == 0; i++) {
        uint64_t seed = 0x9000000u + i, r = seed;
        gen_script(&src, seed, 30 + rng_below(&r, 271), salt);
        project_path(p, i, path, sizeof path);
        if (src.oom || bench_write(path, src.p, src.len) != 0) {
            fprintf(stderr, "bench cache: cannot write %s\n", path);
            rc = -1;
        }
        *lines += src.lines;
    }
    sb_free(&src);
    return rc;
}

/* Create a runtime and load every script: *ms is the wall time of both (the
 * counters are read in between, untimed). The runtime stays alive in *out. */
static int project_start(const bench_ctx_t *ctx, const project_t *p, start_kind_t kind, ljs_runtime_t **out,
                         double *ms, cache_delta_t *d)
{
    const char *what = start_label[kind];
    ljs_cache_stats_t before, after;
    char path[512], cache_dir[512] = "";
    if (kind == START_COLD_DISK || kind == START_WARM_DISK)
        snprintf(cache_dir, sizeof cache_dir, "%s/bytecode", p->dir);
    uint64_t t0 = bench_now_ns();
    if (runtime_new_dir(ctx->workers, kind != START_NOCACHE, 0, cache_dir, what, out) != 0)
        return -1;
    uint64_t t1 = bench_now_ns();
    int rc = cache_snap(*out, what, &before);
    uint64_t t2 = bench_now_ns();
    for (unsigned i = 0; i < p->n && rc == 0; i++) {
        project_path(p, i, path, sizeof path);
        int e = ljs_script_load(*out, path, NULL);
        if (e != LJS_OK)
            rc = fail(path, e);
    }
    uint64_t t3 = bench_now_ns();
    *ms = (double)((t1 - t0) + (t3 - t2)) * 1e-6;
    if (rc == 0 && (rc = cache_snap(*out, what, &after)) == 0)
        cache_add(d, &before, &after);
    return rc;
}

/* Remove dir/sub and the files in it (the disk cache of one rep). */
static void remove_dir_files(const char *dir, const char *sub)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    char file[1024];
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' || strlen(de->d_name) > 2) {
            snprintf(file, sizeof file, "%s/%s", path, de->d_name);
            unlink(file);
        }
    closedir(d);
    rmdir(path);
}

/* Part (2). Returns -1 on an error, 1 if only a cache check failed. */
static int run_project(const bench_ctx_t *ctx, const char *dir, uint64_t nonce, bench_result_t *res)
{
    const project_t p = {dir, ctx->quick ? 100 : 1000};
    int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
    double ms[NSTARTS][MAX_REPS];
    cache_delta_t last[NSTARTS] = {{0}};
    uint64_t lines = 0;
    int rc = 0, bad = 0;
    char salt[96], what[64];
    for (int rep = 0; rep < reps && rc == 0; rep++) {
        snprintf(salt, sizeof salt, "ljs-bench cache project %llu rep %d", (unsigned long long)nonce, rep);
        if (project_write(&p, salt, &lines) != 0)
            return -1;
        ljs_runtime_t *rt[NSTARTS] = {NULL};
        cache_delta_t d[NSTARTS];
        memset(d, 0, sizeof d);
        /* No cache first, so that it cannot warm anything for the cold start;
         * the cold runtime stays alive while the warm one starts. */
        rc = project_start(ctx, &p, START_NOCACHE, &rt[START_NOCACHE], &ms[START_NOCACHE][rep],
                           &d[START_NOCACHE]);
        ljs_runtime_destroy(rt[START_NOCACHE]);
        rt[START_NOCACHE] = NULL;
        if (rc == 0)
            rc = project_start(ctx, &p, START_COLD, &rt[START_COLD], &ms[START_COLD][rep], &d[START_COLD]);
        if (rc == 0)
            rc = project_start(ctx, &p, START_WARM, &rt[START_WARM], &ms[START_WARM][rep], &d[START_WARM]);
        ljs_runtime_destroy(rt[START_WARM]);
        ljs_runtime_destroy(rt[START_COLD]);
        /* No runtime alive: the disk starts begin with an empty process-wide
         * cache, like a new process. */
        for (start_kind_t k = START_COLD_DISK; k <= START_WARM_DISK && rc == 0; k++) {
            rc = project_start(ctx, &p, k, &rt[k], &ms[k][rep], &d[k]);
            ljs_runtime_destroy(rt[k]);
        }
        if (rc == 0 && (d[START_WARM_DISK].compiles != 0 || d[START_WARM_DISK].disk_hits != p.n)) {
            fprintf(stderr,
                    "bench cache: cache check failed: warm disk start compiled %llu, %llu disk hits of %u\n",
                    (unsigned long long)d[START_WARM_DISK].compiles,
                    (unsigned long long)d[START_WARM_DISK].disk_hits, p.n);
            bad = 1;
        }
        remove_dir_files(p.dir, "bytecode");
        if (rc == 0) {
            cache_delta_t both = d[START_COLD];
            both.compiles += d[START_WARM].compiles;
            both.hits += d[START_WARM].hits;
            snprintf(what, sizeof what, "project rep %d (cold + warm start)", rep);
            bad |= cache_check(what, &both, p.n) != 0;
            memcpy(last, d, sizeof last);
        }
    }
    if (rc != 0)
        return -1;
    double nocache = bench_median(ms[START_NOCACHE], (size_t)reps);
    double cold = bench_median(ms[START_COLD], (size_t)reps);
    double warm = bench_median(ms[START_WARM], (size_t)reps);
    double cold_disk = bench_median(ms[START_COLD_DISK], (size_t)reps);
    double warm_disk = bench_median(ms[START_WARM_DISK], (size_t)reps);
    bench_figure(res, "project_scripts", (double)p.n);
    bench_figure(res, "project_lines", (double)lines);
    bench_figure(res, "nocache_start_ms", nocache);
    bench_figure(res, "cold_start_ms", cold);
    bench_figure(res, "warm_start_ms", warm);
    bench_figure(res, "cold_cache_compiles", (double)last[START_COLD].compiles);
    bench_figure(res, "cold_cache_hits", (double)last[START_COLD].hits);
    bench_figure(res, "cold_cache_compile_ms", last[START_COLD].compile_ms);
    bench_figure(res, "warm_cache_compiles", (double)last[START_WARM].compiles);
    bench_figure(res, "warm_cache_hits", (double)last[START_WARM].hits);
    bench_figure(res, "cold_disk_start_ms", cold_disk);
    bench_figure(res, "warm_disk_start_ms", warm_disk);
    bench_ratio(res, "warm_vs_cold", ratio(cold, warm));
    bench_ratio(res, "disk_warm_vs_cold", ratio(cold_disk, warm_disk));
    bench_ratio(res, "cold_vs_nocache", ratio(nocache, cold));
    return bad;
}

/* ========================================================================
 * The case
 * ======================================================================== */

static void remove_files(const char *dir, unsigned nproject)
{
    char path[512];
    static const char *const size_names[2] = {"small", "large"};
    for (int si = 0; si < 2; si++)
        for (int vi = 0; vi < NVARIANTS; vi++) {
            snprintf(path, sizeof path, "%s/%s_%s.lua", dir, size_names[si], variants[vi].label);
            unlink(path);
        }
    const project_t p = {dir, nproject};
    for (unsigned i = 0; i < p.n; i++) {
        project_path(&p, i, path, sizeof path);
        unlink(path);
    }
    rmdir(dir);
}

int bench_cache(const bench_ctx_t *ctx)
{
    char dir[64];
    if (bench_tmpdir(dir, sizeof dir, "cache") != 0)
        return 1;
    /* Salts every source: a cache (even a later on-disk one) has never seen
     * them. */
    uint64_t nonce = bench_now_ns() ^ ((uint64_t)getpid() << 32);
    bench_result_t res = {.name = "cache"};
    int a = run_per_load(ctx, dir, nonce, &res);
    int b = a < 0 ? -1 : run_project(ctx, dir, nonce, &res);
    remove_files(dir, ctx->quick ? 100 : 1000);
    if (a < 0 || b < 0)
        return 1;
    bench_figure(&res, "workers", (double)ctx->workers);
    bench_report(ctx, &res);
    if (a || b) {
        fprintf(stderr, "bench cache: the shared bytecode cache did not compile once and hit (see above)\n");
        return 1;
    }
    return 0;
}
