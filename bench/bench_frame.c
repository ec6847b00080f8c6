/* bench_frame.c - whole frames: ljs against the common way engines embed Lua.
 *
 * Baseline (a): one plain lua_State on the calling thread, a Lua table per
 * entity holding all its state, and a C loop doing lua_pcall(update, tbl, dt)
 * per entity (NOTES-field-access.md, shape A). Its get() reads the tables
 * directly and its send() appends to a Lua queue that a C loop dispatches
 * after the updates (the baseline's event phase).
 * ljs: (b) one worker, (c) ctx->workers workers; the light script in both
 * field-access forms (natural `self.x` and fast reads/writes arguments).
 * Floor (d): the light fast-form script run by a bare C loop over C arrays
 * in one plain lua_State (floor_loop): the Lua C API's own price for the
 * fast form's crossing, so light_fast_1w_vs_floor shows what ljs adds.
 *
 * Scripts: *light* is movement (~10 field operations on x, y, vx, vy with
 * bouncing bounds); *heavy* is AI-like (a loop of trigonometry scoring
 * headings, get() of another entity's position, a send() every 32 frames),
 * a few microseconds per entity. Their sources are written to a mkdtemp
 * directory at run time (ljs loads scripts from files) and removed after.
 *
 * Every world of one (size, script) runs the same number of frames from the
 * same start, one world at a time (see measure_world). Afterwards each must
 * agree with the baseline (sum of x; sum of hp, which counts delivered
 * events; ljs' update counter), so a broken path cannot pass as a fast one.
 * The cores_busy_* figures (process CPU time / wall time) show whether the
 * all-worker runs really used every core. The heavy script's movement does not depend on
 * what get() returns, because ljs' get() sees the last committed frame and
 * the baseline's sees the current one.
 */
#include "bench/bench.h"

#include <ljs.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ========================================================================
 * Scripts
 * ======================================================================== */

/* Bounce inside [0, 1000]. The natural and fast forms do the same
 * arithmetic in the same order, so they end bit-identical. */
static const char light_natural_src[] = "return {\n"
                                        "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },\n"
                                        "  update = function(self, dt)\n"
                                        "    local x = self.x + self.vx * dt\n"
                                        "    local y = self.y + self.vy * dt\n"
                                        "    if x < 0.0 then x = -x; self.vx = -self.vx\n"
                                        "    elseif x > 1000.0 then x = 2000.0 - x; self.vx = -self.vx end\n"
                                        "    if y < 0.0 then y = -y; self.vy = -self.vy\n"
                                        "    elseif y > 1000.0 then y = 2000.0 - y; self.vy = -self.vy end\n"
                                        "    self.x = x\n"
                                        "    self.y = y\n"
                                        "  end,\n"
                                        "}\n";

static const char light_fast_src[] = "return {\n"
                                     "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },\n"
                                     "  reads = { \"x\", \"y\", \"vx\", \"vy\" },\n"
                                     "  writes = { \"x\", \"y\", \"vx\", \"vy\" },\n"
                                     "  update = function(id, dt, x, y, vx, vy)\n"
                                     "    x = x + vx * dt\n"
                                     "    y = y + vy * dt\n"
                                     "    if x < 0.0 then x = -x; vx = -vx\n"
                                     "    elseif x > 1000.0 then x = 2000.0 - x; vx = -vx end\n"
                                     "    if y < 0.0 then y = -y; vy = -vy\n"
                                     "    elseif y > 1000.0 then y = 2000.0 - y; vy = -vy end\n"
                                     "    return x, y, vx, vy\n"
                                     "  end,\n"
                                     "}\n";

/* HEAVY_STEPS iterations of the scoring loop set the per-entity cost. */
static const char heavy_src[] =
    "local HEAVY_STEPS = 24\n"
    "local sin, cos, abs, sqrt = math.sin, math.cos, math.abs, math.sqrt\n"
    "return {\n"
    "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 1000.0, target = 0, seq = 0, tick = 0,\n"
    "             threat = 0.0, heading = 0.0 },\n"
    "  update = function(self, dt)\n"
    "    local x, y, vx, vy = self.x, self.y, self.vx, self.vy\n"
    "    -- think: score candidate headings against the walls and the current course\n"
    "    local best, best_s = 0.0, -math.huge\n"
    "    for i = 1, HEAVY_STEPS do\n"
    "      local a = i * (6.283185307179586 / HEAVY_STEPS)\n"
    "      local cx, cy = cos(a), sin(a)\n"
    "      local s = cx * vx + cy * vy - abs(x + cx * 50.0 - 500.0) * 0.01 - abs(y + cy * 50.0 - 500.0) * 0.01\n"
    "      if s > best_s then best_s, best = s, a end\n"
    "    end\n"
    "    self.heading = best\n"
    "    -- look at another entity (committed state in ljs, current in the baseline)\n"
    "    local t = self.target\n"
    "    local tx, ty = get(t, \"x\"), get(t, \"y\")\n"
    "    if tx then\n"
    "      local dx, dy = tx - x, ty - y\n"
    "      self.threat = 1.0 / (1.0 + sqrt(dx * dx + dy * dy))\n"
    "    end\n"
    "    local tick = self.tick + 1\n"
    "    self.tick = tick\n"
    "    if (tick + self.seq) % 32 == 0 then send(t, \"hit\", { damage = 1.0 }) end\n"
    "    x = x + vx * dt\n"
    "    y = y + vy * dt\n"
    "    if x < 0.0 then x = -x; self.vx = -vx elseif x > 1000.0 then x = 2000.0 - x; self.vx = -vx end\n"
    "    if y < 0.0 then y = -y; self.vy = -vy elseif y > 1000.0 then y = 2000.0 - y; self.vy = -vy end\n"
    "    self.x = x\n"
    "    self.y = y\n"
    "  end,\n"
    "  on_hit = function(self, payload, sender) self.hp = self.hp - payload.damage end,\n"
    "}\n";

static const char empty_src[] = "return {\n"
                                "  fields = { x = 0.0 },\n"
                                "  update = function(self, dt) end,\n"
                                "}\n";

/* Wide scripts (issue 17): 24 declared fields, update touches 2 (x, vx);
 * the narrow ones declare only those 2. Generated by wide_src(). */
static const char wide_update_natural[] =
    "  update = function(self, dt)\n"
    "    local x = self.x + self.vx * dt\n"
    "    if x < 0.0 then x = -x; self.vx = -self.vx\n"
    "    elseif x > 1000.0 then x = 2000.0 - x; self.vx = -self.vx end\n"
    "    self.x = x\n"
    "  end,\n";
static const char wide_update_fast[] = "  reads = { \"x\", \"vx\" }, writes = { \"x\", \"vx\" },\n"
                                       "  update = function(id, dt, x, vx)\n"
                                       "    x = x + vx * dt\n"
                                       "    if x < 0.0 then x = -x; vx = -vx\n"
                                       "    elseif x > 1000.0 then x = 2000.0 - x; vx = -vx end\n"
                                       "    return x, vx\n"
                                       "  end,\n";

/* The module source: `extra` more fields (f01 = 0.0, ...) after x and vx. */
static void wide_src(char *buf, size_t len, int extra, int fast)
{
    size_t o = (size_t)snprintf(buf, len, "return {\n  fields = { x = 0.0, vx = 0.0");
    for (int i = 1; i <= extra && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, ", f%02d = %d.5", i, i);
    if (o < len)
        snprintf(buf + o, len - o, " },\n%s}\n", fast ? wide_update_fast : wide_update_natural);
}

/* The baseline's versions of the ljs globals the scripts use: get() reads
 * the entity tables (current values), send() appends to a queue the C event
 * loop drains after the updates. */
static const char baseline_prelude[] = "ents = {}\n"
                                       "queue = {}\n"
                                       "function get(e, f)\n"
                                       "  local t = ents[e]\n"
                                       "  if t then return t[f] end\n"
                                       "end\n"
                                       "function send(e, name, payload)\n"
                                       "  local q = queue\n"
                                       "  local n = #q\n"
                                       "  q[n + 1] = e; q[n + 2] = name; q[n + 3] = payload\n"
                                       "end\n";

/* ========================================================================
 * Starting state, shared by every world
 * ======================================================================== */

/* splitmix64 (Steele, Lea, Flood 2014) keyed by the entity index, so every
 * world starts from the same state whatever order it is built in. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t i, uint64_t k)
{
    return (double)(mix(i * 4 + k) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct start_s {
    double x, y, vx, vy;
    uint32_t target; /* index of the entity this one watches and hits */
} start_t;

static start_t start_of(uint32_t i, uint32_t n)
{
    start_t s;
    s.x = unit(i, 0) * 1000.0;
    s.y = unit(i, 1) * 1000.0;
    s.vx = (unit(i, 2) * 2.0 - 1.0) * 100.0;
    s.vy = (unit(i, 3) * 2.0 - 1.0) * 100.0;
    s.target = (uint32_t)(((uint64_t)i * 7919u + 13u) % n);
    if (s.target == i)
        s.target = (i + 1) % n;
    return s;
}

/* ========================================================================
 * A world: the baseline or an ljs runtime
 * ======================================================================== */

typedef struct world_s {
    const char *label; /* "baseline", "natural_1w", ... */
    int is_ljs;
    uint32_t n;
    uint64_t frames;
    int failed;
    /* baseline and floor */
    lua_State *L;
    /* floor: x, y, vx, vy in C arrays */
    int is_floor;
    double *cols[4];
    /* ljs */
    ljs_runtime_t *rt;
    ljs_entity_t *ids;
} world_t;

/* Stack layout of the baseline's state during the run. */
enum { B_MSGH = 1, B_MODULE, B_UPDATE, B_ENTS };

static int baseline_msgh(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int baseline_create(world_t *w, const char *src, uint32_t n)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return -1;
    w->L = L;
    luaL_openlibs(L);
    if (luaL_dostring(L, baseline_prelude) != LUA_OK)
        goto lua_fail;
    lua_settop(L, 0);
    lua_pushcfunction(L, baseline_msgh);                                /* B_MSGH */
    if (luaL_loadbufferx(L, src, strlen(src), "=bench", "t") != LUA_OK) /* B_MODULE */
        goto lua_fail;
    if (lua_pcall(L, 0, 1, B_MSGH) != LUA_OK || !lua_istable(L, B_MODULE))
        goto lua_fail;
    lua_getfield(L, B_MODULE, "update"); /* B_UPDATE */
    lua_getglobal(L, "ents");            /* B_ENTS */
    lua_getfield(L, B_MODULE, "fields");
    int fields = lua_gettop(L);
    for (uint32_t i = 0; i < n; i++) {
        start_t s = start_of(i, n);
        lua_createtable(L, 0, 12);
        lua_pushnil(L);
        while (lua_next(L, fields) != 0) { /* defaults, order irrelevant */
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushinteger(L, (lua_Integer)i + 1);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, s.x);
        lua_setfield(L, -2, "x");
        lua_pushnumber(L, s.y);
        lua_setfield(L, -2, "y");
        lua_pushnumber(L, s.vx);
        lua_setfield(L, -2, "vx");
        lua_pushnumber(L, s.vy);
        lua_setfield(L, -2, "vy");
        lua_getfield(L, -1, "target");
        int has_target = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (has_target) {
            lua_pushinteger(L, (lua_Integer)s.target + 1);
            lua_setfield(L, -2, "target");
            lua_pushinteger(L, (lua_Integer)i);
            lua_setfield(L, -2, "seq");
        }
        lua_rawseti(L, B_ENTS, (lua_Integer)i + 1);
    }
    lua_settop(L, B_ENTS);
    lua_gc(L, LUA_GCCOLLECT);
    w->n = n;
    return 0;

lua_fail:
    fprintf(stderr, "bench frame: baseline: %s\n", lua_tostring(L, -1));
    return -1;
}

/* One baseline frame: the update loop, then the event queue. */
static void baseline_frame(world_t *w, double dt)
{
    lua_State *L = w->L;
    uint32_t n = w->n;
    for (uint32_t i = 1; i <= n; i++) {
        lua_pushvalue(L, B_UPDATE);
        lua_rawgeti(L, B_ENTS, (lua_Integer)i);
        lua_pushnumber(L, dt);
        if (lua_pcall(L, 2, 0, B_MSGH) != LUA_OK) {
            if (!w->failed)
                fprintf(stderr, "bench frame: baseline update: %s\n", lua_tostring(L, -1));
            w->failed = 1;
            lua_pop(L, 1);
        }
    }
    lua_getglobal(L, "queue");
    int q = lua_gettop(L);
    lua_Integer len = (lua_Integer)lua_rawlen(L, q);
    if (len > 0) {
        lua_newtable(L); /* events sent by handlers wait for the next frame */
        lua_setglobal(L, "queue");
        for (lua_Integer k = 1; k + 2 <= len; k += 3) {
            lua_rawgeti(L, q, k + 1);
            lua_pushfstring(L, "on_%s", lua_tostring(L, -1));
            lua_rawget(L, B_MODULE);
            lua_remove(L, -2);
            if (!lua_isfunction(L, -1)) {
                lua_pop(L, 1);
                continue;
            }
            lua_rawgeti(L, q, k);
            lua_rawget(L, B_ENTS);
            lua_rawgeti(L, q, k + 2);
            lua_pushnil(L); /* sender: unused by the bench scripts */
            if (lua_pcall(L, 3, 0, B_MSGH) != LUA_OK) {
                if (!w->failed)
                    fprintf(stderr, "bench frame: baseline handler: %s\n", lua_tostring(L, -1));
                w->failed = 1;
                lua_pop(L, 1);
            }
        }
    }
    lua_settop(L, B_ENTS);
}

static double baseline_sum(world_t *w, const char *field)
{
    lua_State *L = w->L;
    double sum = 0.0;
    for (uint32_t i = 1; i <= w->n; i++) {
        lua_rawgeti(L, B_ENTS, (lua_Integer)i);
        lua_getfield(L, -1, field);
        sum += lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    return sum;
}

static int ljs_world_create(world_t *w, const char *script_path, uint32_t n, unsigned workers, int table_tier)
{
    ljs_config_t cfg;
    ljs_script_t s;
    int rc = ljs_config_init(&cfg);
    if (rc == LJS_OK) {
        cfg.workers = workers;
        if (table_tier)
            cfg.natural = 0;
        rc = ljs_runtime_create(&cfg, &w->rt);
    }
    if (rc == LJS_OK)
        rc = ljs_script_load(w->rt, script_path, &s);
    if (rc != LJS_OK) {
        fprintf(stderr, "bench frame: %s: %s: %s\n", w->label, ljs_errname(rc), ljs_last_error());
        return -1;
    }
    w->ids = malloc(sizeof *w->ids * n);
    if (w->ids == NULL)
        return -1;
    for (uint32_t i = 0; i < n && rc == LJS_OK; i++)
        if ((rc = ljs_entity_create(w->rt, &w->ids[i])) == LJS_OK)
            rc = ljs_script_attach(w->rt, w->ids[i], s);
    /* Which of the start values the script has fields for. */
    double probe;
    int has_target =
        rc == LJS_OK && n > 0 && ljs_field_get_number(w->rt, w->ids[0], "target", &probe) == LJS_OK;
    int has_v = rc == LJS_OK && n > 0 && ljs_field_get_number(w->rt, w->ids[0], "vx", &probe) == LJS_OK;
    int has_y = rc == LJS_OK && n > 0 && ljs_field_get_number(w->rt, w->ids[0], "y", &probe) == LJS_OK;
    for (uint32_t i = 0; i < n && rc == LJS_OK; i++) {
        start_t st = start_of(i, n);
        rc = ljs_field_set_number(w->rt, w->ids[i], "x", st.x);
        if (rc == LJS_OK && has_v)
            rc = ljs_field_set_number(w->rt, w->ids[i], "vx", st.vx);
        if (rc == LJS_OK && has_v && has_y) {
            if ((rc = ljs_field_set_number(w->rt, w->ids[i], "y", st.y)) == LJS_OK)
                rc = ljs_field_set_number(w->rt, w->ids[i], "vy", st.vy);
        }
        if (rc == LJS_OK && has_target) {
            if ((rc = ljs_field_set_integer(w->rt, w->ids[i], "target", (int64_t)w->ids[st.target].id)) ==
                LJS_OK)
                rc = ljs_field_set_integer(w->rt, w->ids[i], "seq", (int64_t)i);
        }
    }
    if (rc != LJS_OK) {
        fprintf(stderr, "bench frame: %s: creating entities: %s: %s\n", w->label, ljs_errname(rc),
                ljs_last_error());
        return -1;
    }
    w->n = n;
    return 0;
}

static void ljs_world_frame(world_t *w, double dt)
{
    int rc = ljs_frame(w->rt, dt);
    if (rc != LJS_OK && !w->failed) {
        fprintf(stderr, "bench frame: %s: ljs_frame: %s: %s\n", w->label, ljs_errname(rc), ljs_last_error());
        w->failed = 1;
    }
}

/* The floor (light script, fast form): the least the Lua C API lets any
 * runtime pay to run a fast-form update over C-side fields. One plain
 * lua_State, x/y/vx/vy in C arrays, one pcall per frame, and per entity
 * only the crossing itself: push the function, id, dt and 4 fields,
 * lua_call, check that the 4 results are numbers and store them. No
 * watchdog, no double buffer, no per-entity error recovery, no scheduler.
 * How close ljs' fast form comes to it says how much ljs itself adds. */
enum { F_UPDATE = 1 };

static int floor_loop(lua_State *L)
{
    world_t *w = lua_touserdata(L, 1);
    lua_Number dt = lua_tonumber(L, 2);
    double *x = w->cols[0], *y = w->cols[1], *vx = w->cols[2], *vy = w->cols[3];
    lua_settop(L, 3); /* the update function */
    for (uint32_t i = 0; i < w->n; i++) {
        lua_pushvalue(L, 3);
        lua_pushinteger(L, (lua_Integer)i + 1);
        lua_pushnumber(L, dt);
        lua_pushnumber(L, x[i]);
        lua_pushnumber(L, y[i]);
        lua_pushnumber(L, vx[i]);
        lua_pushnumber(L, vy[i]);
        lua_call(L, 6, 4);
        for (int k = 4; k <= 7; k++)
            if (lua_type(L, k) != LUA_TNUMBER)
                return luaL_error(L, "result %d is not a number", k - 3);
        x[i] = lua_tonumber(L, 4);
        y[i] = lua_tonumber(L, 5);
        vx[i] = lua_tonumber(L, 6);
        vy[i] = lua_tonumber(L, 7);
        lua_settop(L, 3);
    }
    return 0;
}

static int floor_create(world_t *w, const char *src, uint32_t n)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return -1;
    w->L = L;
    w->is_floor = 1;
    luaL_openlibs(L);
    if (luaL_loadbufferx(L, src, strlen(src), "=bench", "t") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK ||
        !lua_istable(L, -1)) {
        fprintf(stderr, "bench frame: floor: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no module");
        return -1;
    }
    lua_getfield(L, -1, "update");
    lua_replace(L, F_UPDATE);
    lua_settop(L, F_UPDATE);
    for (int k = 0; k < 4; k++)
        if ((w->cols[k] = malloc(sizeof(double) * (n ? n : 1))) == NULL)
            return -1;
    for (uint32_t i = 0; i < n; i++) {
        start_t st = start_of(i, n);
        w->cols[0][i] = st.x;
        w->cols[1][i] = st.y;
        w->cols[2][i] = st.vx;
        w->cols[3][i] = st.vy;
    }
    w->n = n;
    return 0;
}

static void floor_frame(world_t *w, double dt)
{
    lua_State *L = w->L;
    lua_pushcfunction(L, floor_loop);
    lua_pushlightuserdata(L, w);
    lua_pushnumber(L, dt);
    lua_pushvalue(L, F_UPDATE);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        if (!w->failed)
            fprintf(stderr, "bench frame: floor: %s\n", lua_tostring(L, -1));
        w->failed = 1;
    }
    lua_settop(L, F_UPDATE);
}

static double floor_sum(const world_t *w, const char *field)
{
    double sum = 0.0;
    if (strcmp(field, "x") == 0) /* the light script has no hp: 0, like the baseline's nil */
        for (uint32_t i = 0; i < w->n; i++)
            sum += w->cols[0][i];
    return sum;
}

static double ljs_world_sum(world_t *w, const char *field)
{
    double sum = 0.0, v;
    for (uint32_t i = 0; i < w->n; i++) {
        int rc = ljs_field_get_number(w->rt, w->ids[i], field, &v);
        if (rc == LJS_ENOENT)
            continue; /* no such field: counts as 0, like the baseline's nil */
        if (rc != LJS_OK) {
            w->failed = 1;
            return NAN;
        }
        sum += v;
    }
    return sum;
}

static void print_console(void *ud, const ljs_log_line_t *line)
{
    world_t *w = ud;
    if (line->severity == LJS_LOG_ERROR)
        fprintf(stderr, "bench frame: %s: script error: %s\n", w->label, line->text);
}

static void world_destroy(world_t *w)
{
    if (w->L != NULL)
        lua_close(w->L);
    if (w->rt != NULL)
        ljs_runtime_destroy(w->rt);
    free(w->ids);
    for (int k = 0; k < 4; k++)
        free(w->cols[k]);
    memset(w, 0, sizeof *w);
}

static void world_frames(world_t *w, double dt, uint64_t frames)
{
    for (uint64_t f = 0; f < frames; f++) {
        if (w->is_ljs)
            ljs_world_frame(w, dt);
        else if (w->is_floor)
            floor_frame(w, dt);
        else
            baseline_frame(w, dt);
    }
    if (w->is_ljs) /* the ring is bounded: drain so errors are seen, not dropped */
        ljs_console_drain(w->rt, print_console, w);
    w->frames += frames;
}

/* ========================================================================
 * Measurement
 * ======================================================================== */

#define DT (1.0 / 60.0)
#define MAX_REPS 64

/* One world to measure: the baseline (src set) or an ljs runtime (path). */
typedef struct spec_s {
    const char *label;
    const char *src;  /* baseline: the script's source */
    const char *path; /* ljs: the script file */
    unsigned workers;
    int table_tier; /* ljs: LJS_NATURAL=0 (the self table every call) */
    int floor;      /* src is a fast-form script run by the bare-API floor */
} spec_t;

typedef struct measured_s {
    double ups;   /* median entity updates per second */
    double cores; /* median process CPU time / wall time while measuring */
    double sum_x, sum_hp;
} measured_t;

static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double world_sum(world_t *w, const char *field)
{
    if (w->is_floor)
        return floor_sum(w, field);
    return w->is_ljs ? ljs_world_sum(w, field) : baseline_sum(w, field);
}

/* The run had no errors, and ljs really ran every update. */
static int world_check(world_t *w)
{
    int ok = !w->failed;
    ljs_stats_t st;
    if (w->is_ljs && ljs_stats_get(w->rt, &st) == LJS_OK &&
        (st.script_errors != 0 || st.updates != (uint64_t)w->n * w->frames)) {
        fprintf(stderr, "bench frame: %s: %llu script errors, %llu updates (expected %llu)\n", w->label,
                (unsigned long long)st.script_errors, (unsigned long long)st.updates,
                (unsigned long long)w->n * w->frames);
        ok = 0;
    }
    if (w->failed)
        fprintf(stderr, "bench frame: %s: errors during the run\n", w->label);
    return ok ? 0 : -1;
}

/* Build one world, warm it up, time reps of `frames` frames, record its end
 * state and destroy it. Worlds are measured one after another, never two
 * runtimes alive at once: a runtime's scheduler is bound to its owner
 * thread through a thread-local, and only the most recently created runtime
 * of a thread gets its workers (the others run frames inline). */
static int measure_world(const bench_ctx_t *ctx, const spec_t *sp, uint32_t n, uint64_t frames, measured_t *m)
{
    world_t w;
    memset(&w, 0, sizeof w);
    w.label = sp->label;
    w.is_ljs = sp->src == NULL;
    int rc = w.is_ljs    ? ljs_world_create(&w, sp->path, n, sp->workers, sp->table_tier)
             : sp->floor ? floor_create(&w, sp->src, n)
                         : baseline_create(&w, sp->src, n);
    if (rc == 0) {
        double ups[MAX_REPS], cores[MAX_REPS];
        int reps = ctx->reps < MAX_REPS ? ctx->reps : MAX_REPS;
        world_frames(&w, DT, frames); /* warm-up: caches, page faults, GC steady state */
        for (int rep = 0; rep < reps; rep++) {
            double c0 = cpu_now_s();
            uint64_t t0 = bench_now_ns();
            world_frames(&w, DT, frames);
            double wall = (double)(bench_now_ns() - t0) * 1e-9;
            cores[rep] = (cpu_now_s() - c0) / wall;
            ups[rep] = (double)n * (double)frames / wall;
        }
        m->ups = bench_median(ups, (size_t)reps);
        m->cores = bench_median(cores, (size_t)reps);
        m->sum_x = world_sum(&w, "x");
        m->sum_hp = world_sum(&w, "hp");
        rc = world_check(&w);
    }
    world_destroy(&w);
    return rc;
}

/* A world ended in the same state as the baseline: same sum of x (movement)
 * and of hp (events delivered), within float tolerance. */
static int agree(const char *what, const spec_t *sp, const measured_t *m, const measured_t *base)
{
    int ok = 1;
    const double got[2] = {m->sum_x, m->sum_hp}, want[2] = {base->sum_x, base->sum_hp};
    for (int f = 0; f < 2; f++) {
        if (!(fabs(got[f] - want[f]) <= 1e-9 * (fabs(want[f]) + 1.0))) {
            fprintf(stderr, "bench frame: %s %s: sum of %s is %.17g, baseline %.17g\n", what, sp->label,
                    f ? "hp" : "x", got[f], want[f]);
            ok = 0;
        }
    }
    return ok ? 0 : -1;
}

/* Measure the specs in order (specs[0] is the baseline) and check each
 * against it. */
static int measure_all(const bench_ctx_t *ctx, const char *what, const spec_t *specs, size_t nspecs,
                       uint32_t n, uint64_t frames, measured_t *out)
{
    for (size_t k = 0; k < nspecs; k++) {
        if (measure_world(ctx, &specs[k], n, frames, &out[k]) != 0)
            return -1;
        if (k > 0 && agree(what, &specs[k], &out[k], &out[0]) != 0)
            return -1;
    }
    return 0;
}

/* Names handed to bench_figure/bench_ratio must outlive bench_report. */
static char name_pool[96][64];
static size_t name_used;

static const char *name_of(const char *fmt, const char *a, const char *b)
{
    if (name_used == sizeof name_pool / sizeof name_pool[0])
        return "overflow";
    char *s = name_pool[name_used++];
    snprintf(s, sizeof name_pool[0], fmt, a, b);
    return s;
}

/* Median updates/s of every world of one size, and the cores the
 * all-worker worlds kept busy (CPU time / wall time). */
typedef struct outcome_s {
    double base, light_nat_1w, light_nat_all, light_fast_1w, light_fast_all, heavy_1w, heavy_all, heavy_base;
    double cores_light_nat_all, cores_light_fast_all, cores_heavy_all;
    double light_floor; /* the fast form's bare-API floor, one thread */
} outcome_t;

/* Frames per rep: enough for ~2M light (~0.2M heavy) entity updates. */
static uint64_t frames_for(uint32_t n, uint32_t work)
{
    uint64_t f = work / n;
    return f < 2 ? 2 : f;
}

static int run_light(const bench_ctx_t *ctx, const char *dir, uint32_t n, outcome_t *o)
{
    char nat[512], fast[512];
    snprintf(nat, sizeof nat, "%s/light_natural.lua", dir);
    snprintf(fast, sizeof fast, "%s/light_fast.lua", dir);
    const spec_t specs[] = {{"light baseline", light_natural_src, NULL, 0, 0, 0},
                            {"light natural_1w", NULL, nat, 1, 0, 0},
                            {"light fast_1w", NULL, fast, 1, 0, 0},
                            {"light natural_all", NULL, nat, ctx->workers, 0, 0},
                            {"light fast_all", NULL, fast, ctx->workers, 0, 0},
                            {"light floor", light_fast_src, NULL, 0, 0, 1}};
    measured_t m[6];
    if (measure_all(ctx, "light", specs, 6, n, frames_for(n, 2000000), m) != 0)
        return -1;
    o->light_floor = m[5].ups;
    o->base = m[0].ups;
    o->light_nat_1w = m[1].ups;
    o->light_fast_1w = m[2].ups;
    o->light_nat_all = m[3].ups;
    o->light_fast_all = m[4].ups;
    o->cores_light_nat_all = m[3].cores;
    o->cores_light_fast_all = m[4].cores;
    return 0;
}

static int run_heavy(const bench_ctx_t *ctx, const char *dir, uint32_t n, outcome_t *o)
{
    char path[512];
    snprintf(path, sizeof path, "%s/heavy.lua", dir);
    const spec_t specs[] = {{"heavy baseline", heavy_src, NULL, 0, 0, 0},
                            {"heavy natural_1w", NULL, path, 1, 0, 0},
                            {"heavy natural_all", NULL, path, ctx->workers, 0, 0}};
    measured_t m[3];
    if (measure_all(ctx, "heavy", specs, 3, n, frames_for(n, 200000), m) != 0)
        return -1;
    o->heavy_base = m[0].ups;
    o->heavy_1w = m[1].ups;
    o->heavy_all = m[2].ups;
    o->cores_heavy_all = m[2].cores;
    return 0;
}

/* ns per entity of an empty update: ljs (1 worker) and the baseline. */
static int run_empty(const bench_ctx_t *ctx, const char *dir, uint32_t n, double *ljs_ns, double *base_ns)
{
    char path[512];
    snprintf(path, sizeof path, "%s/empty.lua", dir);
    const spec_t specs[] = {{"empty baseline", empty_src, NULL, 0, 0, 0},
                            {"empty natural_1w", NULL, path, 1, 0, 0}};
    measured_t m[2];
    if (measure_all(ctx, "empty", specs, 2, n, frames_for(n, 2000000), m) != 0)
        return -1;
    *base_ns = 1e9 / m[0].ups;
    *ljs_ns = 1e9 / m[1].ups;
    return 0;
}

static double ratio(double a, double b)
{
    return b > 0.0 ? a / b : 0.0;
}

/* Issue 17's wide scripts at one size, 1 worker: what a call costs when a
 * script declares 24 fields and its update touches 2, against the same
 * script declaring only those 2 (natural and fast forms), against the
 * common embedding with 24-field tables, and the natural form's table
 * tier (LJS_NATURAL=0) for comparison. Also the light script's table tier,
 * 1 worker. Ratios: *_slowdown are time ratios (wide / narrow, lower is
 * better), *_vs_baseline are speed ratios (higher is better). */
static int run_wide(const bench_ctx_t *ctx, const char *dir, uint32_t n, bench_result_t *res)
{
    static char src[4][2048];
    char path[4][512];
    static const char *const file[4] = {"wide_natural.lua", "narrow_natural.lua", "wide_fast.lua",
                                        "narrow_fast.lua"};
    for (int k = 0; k < 4; k++) {
        wide_src(src[k], sizeof src[k], k % 2 == 0 ? 22 : 0, k >= 2);
        snprintf(path[k], sizeof path[k], "%s/%s", dir, file[k]);
        if (bench_write(path[k], src[k], strlen(src[k])) != 0)
            return -1;
    }
    const spec_t wide[] = {{"wide baseline", src[0], NULL, 0, 0, 0},
                           {"wide natural_1w", NULL, path[0], 1, 0, 0},
                           {"wide fast_1w", NULL, path[2], 1, 0, 0},
                           {"wide natural_table_1w", NULL, path[0], 1, 1, 0}};
    const spec_t narrow[] = {{"narrow baseline", src[1], NULL, 0, 0, 0},
                             {"narrow natural_1w", NULL, path[1], 1, 0, 0},
                             {"narrow fast_1w", NULL, path[3], 1, 0, 0}};
    char light[512];
    snprintf(light, sizeof light, "%s/light_natural.lua", dir);
    const spec_t lt[] = {{"light baseline", light_natural_src, NULL, 0, 0, 0},
                         {"light natural_table_1w", NULL, light, 1, 1, 0},
                         {"light natural_1w", NULL, light, 1, 0, 0}};
    measured_t w[4], nw[3], l[3];
    uint64_t frames = frames_for(n, 2000000);
    int rc = measure_all(ctx, "wide", wide, 4, n, frames, w) == 0 &&
                     measure_all(ctx, "narrow", narrow, 3, n, frames, nw) == 0 &&
                     measure_all(ctx, "light", lt, 3, n, frames, l) == 0
                 ? 0
                 : -1;
    for (int k = 0; k < 4; k++)
        unlink(path[k]);
    if (rc != 0)
        return -1;
    bench_figure(res, "wide_natural_1w_ns", 1e9 / w[1].ups);
    bench_figure(res, "narrow_natural_1w_ns", 1e9 / nw[1].ups);
    bench_figure(res, "wide_fast_1w_ns", 1e9 / w[2].ups);
    bench_figure(res, "narrow_fast_1w_ns", 1e9 / nw[2].ups);
    bench_figure(res, "wide_table_1w_ns", 1e9 / w[3].ups);
    bench_figure(res, "wide_baseline_ns", 1e9 / w[0].ups);
    bench_ratio(res, "wide_natural_1w_slowdown", ratio(nw[1].ups, w[1].ups));
    bench_ratio(res, "wide_fast_1w_slowdown", ratio(nw[2].ups, w[2].ups));
    bench_ratio(res, "wide_table_1w_slowdown", ratio(nw[1].ups, w[3].ups));
    bench_ratio(res, "wide_natural_1w_vs_baseline", ratio(w[1].ups, w[0].ups));
    bench_ratio(res, "wide_fast_1w_vs_baseline", ratio(w[2].ups, w[0].ups));
    bench_ratio(res, "wide_table_1w_vs_baseline", ratio(w[3].ups, w[0].ups));
    bench_ratio(res, "light_table_1w_vs_baseline", ratio(l[1].ups, l[0].ups));
    bench_ratio(res, "light_scalar_vs_table_1w", ratio(l[2].ups, l[1].ups));
    return 0;
}

static const char *size_name(uint32_t n, char *buf, size_t len)
{
    if (n % 1000 == 0)
        snprintf(buf, len, "%uk", n / 1000);
    else
        snprintf(buf, len, "%u", n);
    return buf;
}

int bench_frame(const bench_ctx_t *ctx)
{
    static const uint32_t full_sizes[] = {10000, 100000};
    static const uint32_t quick_sizes[] = {2000};
    const uint32_t *sizes = ctx->quick ? quick_sizes : full_sizes;
    size_t nsizes = ctx->quick ? 1 : 2;

    char dir[64];
    if (bench_tmpdir(dir, sizeof dir, "frame") != 0)
        return 1;
    static const struct {
        const char *file;
        const char *src;
    } files[] = {{"light_natural.lua", light_natural_src},
                 {"light_fast.lua", light_fast_src},
                 {"heavy.lua", heavy_src},
                 {"empty.lua", empty_src}};
    int rc = 0;
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0] && rc == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].file);
        if (bench_write(path, files[i].src, strlen(files[i].src)) != 0) {
            fprintf(stderr, "bench frame: cannot write %s\n", path);
            rc = 1;
        }
    }

    bench_result_t res = {.name = "frame"};
    name_used = 0;
    /* Unsuffixed ratios are the worst over the sizes: the targets must hold
     * at every size. */
    double worst[9];
    for (size_t k = 0; k < 9; k++)
        worst[k] = INFINITY;
    static const char *const ratio_names[9] = {
        "light_fast_all_vs_baseline", "light_natural_all_vs_baseline", "heavy_natural_all_vs_baseline",
        "light_fast_all_vs_1w",       "light_natural_all_vs_1w",       "heavy_natural_all_vs_1w",
        "light_fast_1w_vs_baseline",  "light_natural_1w_vs_baseline",  "heavy_natural_1w_vs_baseline"};
    for (size_t si = 0; si < nsizes && rc == 0; si++) {
        uint32_t n = sizes[si];
        char sz[16];
        size_name(n, sz, sizeof sz);
        outcome_t o = {0};
        if (run_light(ctx, dir, n, &o) != 0 || run_heavy(ctx, dir, n, &o) != 0) {
            rc = 1;
            break;
        }
        bench_figure(&res, name_of("updates_per_s_light_baseline_%s%s", sz, ""), o.base);
        bench_figure(&res, name_of("updates_per_s_light_natural_1w_%s%s", sz, ""), o.light_nat_1w);
        bench_figure(&res, name_of("updates_per_s_light_natural_all_%s%s", sz, ""), o.light_nat_all);
        bench_figure(&res, name_of("updates_per_s_light_fast_1w_%s%s", sz, ""), o.light_fast_1w);
        bench_figure(&res, name_of("updates_per_s_light_fast_all_%s%s", sz, ""), o.light_fast_all);
        bench_figure(&res, name_of("updates_per_s_heavy_baseline_%s%s", sz, ""), o.heavy_base);
        bench_figure(&res, name_of("updates_per_s_heavy_natural_1w_%s%s", sz, ""), o.heavy_1w);
        bench_figure(&res, name_of("updates_per_s_heavy_natural_all_%s%s", sz, ""), o.heavy_all);
        bench_figure(&res, name_of("cores_busy_light_natural_all_%s%s", sz, ""), o.cores_light_nat_all);
        bench_figure(&res, name_of("cores_busy_light_fast_all_%s%s", sz, ""), o.cores_light_fast_all);
        bench_figure(&res, name_of("cores_busy_heavy_natural_all_%s%s", sz, ""), o.cores_heavy_all);
        bench_figure(&res, name_of("updates_per_s_light_floor_%s%s", sz, ""), o.light_floor);
        bench_ratio(&res, name_of("light_floor_vs_baseline_%s%s", sz, ""), ratio(o.light_floor, o.base));
        bench_ratio(&res, name_of("light_fast_1w_vs_floor_%s%s", sz, ""),
                    ratio(o.light_fast_1w, o.light_floor));
        double v[9] = {ratio(o.light_fast_all, o.base),        ratio(o.light_nat_all, o.base),
                       ratio(o.heavy_all, o.heavy_base),       ratio(o.light_fast_all, o.light_fast_1w),
                       ratio(o.light_nat_all, o.light_nat_1w), ratio(o.heavy_all, o.heavy_1w),
                       ratio(o.light_fast_1w, o.base),         ratio(o.light_nat_1w, o.base),
                       ratio(o.heavy_1w, o.heavy_base)};
        for (size_t k = 0; k < 9; k++) {
            bench_ratio(&res, name_of("%s_%s", ratio_names[k], sz), v[k]);
            worst[k] = v[k] < worst[k] ? v[k] : worst[k];
        }
    }
    if (rc == 0) {
        double ljs_ns = 0.0, base_ns = 0.0;
        if (run_empty(ctx, dir, sizes[nsizes - 1], &ljs_ns, &base_ns) != 0)
            rc = 1;
        if (rc == 0 && run_wide(ctx, dir, sizes[nsizes - 1], &res) != 0)
            rc = 1;
        bench_figure(&res, "empty_update_ns", ljs_ns);
        bench_figure(&res, "empty_update_baseline_ns", base_ns);
        bench_figure(&res, "workers", (double)ctx->workers);
        for (size_t k = 0; k < 9; k++)
            bench_ratio(&res, ratio_names[k], worst[k]);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].file);
        unlink(path);
    }
    rmdir(dir);
    if (rc == 0)
        bench_report(ctx, &res);
    return rc;
}
