/* pattern.c - the sandbox's string.find, match, gmatch and gsub: Lua 5.4
 * patterns (same syntax, results and error messages), written for ljs so
 * the matcher can be stopped.
 *
 * Lua's own matcher backtracks inside one C call: string.find(("a"):rep(40),
 * ("a*"):rep(40) .. "b") runs for hours, and ".-x" over a few MiB for
 * minutes, with no Lua instruction for a hook to fire on. This one counts
 * its steps (each match attempt, each character an expansion or a %b scan
 * looks at) and every POLL_STEPS calls ljs__watchdog_check, which raises
 * the stop error once the call is over LJS_SCRIPT_TIMEOUT_MS (steps also
 * count against LJS_SCRIPT_BUDGET, like instructions). Nothing is refused:
 * a match that finishes within the limit behaves exactly as in Lua. The
 * matcher owns no memory, so unwinding from a poll leaks nothing.
 * Plain searches use memmem (linear in glibc: the two-way algorithm),
 * where Lua's memchr+memcmp is quadratic in the worst case. */
#define _GNU_SOURCE 1 /* memmem */
#include "runtime/lua/limits.h"

#include "runtime/lua/watchdog.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <string.h>

#define MAX_CAPTURES 32
#define MAX_DEPTH 200 /* recursion of match(): C stack */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define ESC '%'
#define SPECIALS "^$*+?.([%-"
#define POLL_STEPS 4096

typedef struct mstate_s {
    const char *src_init, *src_end, *p_end;
    lua_State *L;
    int depth; /* calls of match() left */
    int level; /* captures open or closed */
    uint32_t steps;
    struct {
        const char *init;
        ptrdiff_t len;
    } capture[MAX_CAPTURES];
} mstate_t;

static void poll(mstate_t *ms)
{
    ljs__watchdog_check(ms->L, ms->steps);
    ms->steps = 0;
}

static inline void step(mstate_t *ms, uint32_t n)
{
    if ((ms->steps += n) >= POLL_STEPS)
        poll(ms);
}

static const char *match(mstate_t *ms, const char *s, const char *p);

/* The end of the single-character class at p. */
static const char *class_end(mstate_t *ms, const char *p)
{
    char c = *p++;
    if (c == ESC) {
        if (p == ms->p_end)
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^')
            p++;
        /* The first character of a set is itself, even ']'. */
        do {
            if (p == ms->p_end)
                luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*(p++) == ESC && p < ms->p_end)
                p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

static int match_class(int c, int cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a':
        r = isalpha(c);
        break;
    case 'c':
        r = iscntrl(c);
        break;
    case 'd':
        r = isdigit(c);
        break;
    case 'g':
        r = isgraph(c);
        break;
    case 'l':
        r = islower(c);
        break;
    case 'p':
        r = ispunct(c);
        break;
    case 's':
        r = isspace(c);
        break;
    case 'u':
        r = isupper(c);
        break;
    case 'w':
        r = isalnum(c);
        break;
    case 'x':
        r = isxdigit(c);
        break;
    case 'z': /* deprecated in Lua 5.2, still accepted by 5.4 */
        r = c == 0;
        break;
    default:
        return cl == c;
    }
    return isupper(cl) ? !r : r != 0;
}

/* p at '[', end at the closing ']'. */
static int match_set(int c, const char *p, const char *end)
{
    int yes = 1;
    if (*(p + 1) == '^') {
        yes = 0;
        p++;
    }
    while (++p < end) {
        if (*p == ESC) {
            p++;
            if (match_class(c, (unsigned char)*p))
                return yes;
        } else if (*(p + 1) == '-' && p + 2 < end) {
            p += 2;
            if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p)
                return yes;
        } else if ((unsigned char)*p == c) {
            return yes;
        }
    }
    return !yes;
}

static int single_match(const mstate_t *ms, const char *s, const char *p, const char *ep)
{
    if (s >= ms->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case ESC:
        return match_class(c, (unsigned char)*(p + 1));
    case '[':
        return match_set(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

static const char *match_balance(mstate_t *ms, const char *s, const char *p)
{
    if (p >= ms->p_end - 1)
        luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= ms->src_end || *s != *p)
        return NULL;
    char open = *p, close = *(p + 1);
    int depth = 1;
    while (++s < ms->src_end) {
        step(ms, 1);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

static const char *max_expand(mstate_t *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (single_match(ms, s + i, p, ep))
        i++;
    step(ms, (uint32_t)(i & 0xffffff) + 1);
    for (; i >= 0; i--) { /* longest first */
        const char *r = match(ms, s + i, ep + 1);
        if (r != NULL)
            return r;
    }
    return NULL;
}

static const char *min_expand(mstate_t *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = match(ms, s, ep + 1);
        if (r != NULL)
            return r;
        if (!single_match(ms, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *start_capture(mstate_t *ms, const char *s, const char *p, ptrdiff_t what)
{
    int level = ms->level;
    if (level >= MAX_CAPTURES)
        luaL_error(ms->L, "too many captures");
    ms->capture[level].init = s;
    ms->capture[level].len = what;
    ms->level = level + 1;
    const char *r = match(ms, s, p);
    if (r == NULL)
        ms->level--;
    return r;
}

static const char *end_capture(mstate_t *ms, const char *s, const char *p)
{
    int l = ms->level - 1;
    while (l >= 0 && ms->capture[l].len != CAP_UNFINISHED)
        l--;
    if (l < 0)
        luaL_error(ms->L, "invalid pattern capture");
    ms->capture[l].len = s - ms->capture[l].init;
    const char *r = match(ms, s, p);
    if (r == NULL)
        ms->capture[l].len = CAP_UNFINISHED;
    return r;
}

static const char *match_capture(mstate_t *ms, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
        luaL_error(ms->L, "invalid capture index %%%d", l + 1);
    size_t len = (size_t)ms->capture[l].len;
    if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0)
        return s + len;
    return NULL;
}

/* Match pattern p at s: the end of the match, or NULL. Pattern items
 * that end a match or continue it in place loop (tail calls); the rest
 * recurse, at most MAX_DEPTH deep. */
static const char *match(mstate_t *ms, const char *s, const char *p)
{
    if (ms->depth-- == 0)
        luaL_error(ms->L, "pattern too complex");
    step(ms, 1);
    while (p != ms->p_end) {
        const char *ep;
        switch (*p) {
        case '(':
            s = *(p + 1) == ')' ? start_capture(ms, s, p + 2, CAP_POSITION)
                                : start_capture(ms, s, p + 1, CAP_UNFINISHED);
            goto done;
        case ')':
            s = end_capture(ms, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != ms->p_end)
                goto single;
            s = s == ms->src_end ? s : NULL;
            goto done;
        case ESC:
            if (*(p + 1) == 'b') {
                s = match_balance(ms, s, p + 2);
                if (s == NULL)
                    goto done;
                p += 4;
                continue;
            }
            if (*(p + 1) == 'f') {
                p += 2;
                if (*p != '[')
                    luaL_error(ms->L, "missing '[' after '%%f' in pattern");
                ep = class_end(ms, p);
                /* Lua strings end with '\0', so *s is readable at the end. */
                int prev = s == ms->src_init ? 0 : (unsigned char)*(s - 1);
                if (!match_set(prev, p, ep - 1) && match_set((unsigned char)*s, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                s = NULL;
                goto done;
            }
            if (isdigit((unsigned char)*(p + 1))) {
                s = match_capture(ms, s, (unsigned char)*(p + 1));
                if (s == NULL)
                    goto done;
                p += 2;
                continue;
            }
            goto single;
        default:
        single:
            ep = class_end(ms, p);
            if (!single_match(ms, s, p, ep)) {
                if (*ep == '*' || *ep == '?' || *ep == '-') { /* zero repetitions are fine */
                    p = ep + 1;
                    continue;
                }
                s = NULL;
                goto done;
            }
            switch (*ep) {
            case '?': {
                const char *r = match(ms, s + 1, ep + 1);
                if (r != NULL) {
                    s = r;
                    goto done;
                }
                p = ep + 1;
                continue;
            }
            case '+':
                s = max_expand(ms, s + 1, p, ep);
                goto done;
            case '*':
                s = max_expand(ms, s, p, ep);
                goto done;
            case '-':
                s = min_expand(ms, s, p, ep);
                goto done;
            default:
                s++;
                p = ep;
                continue;
            }
        }
    }
done:
    ms->depth++;
    return s;
}

/* ---- captures --------------------------------------------------------------- */

/* Push capture i (the whole match s..e when there are none); returns its
 * length, or CAP_POSITION. */
static void push_capture(mstate_t *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i != 0)
            luaL_error(ms->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(ms->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = ms->capture[i].len;
    if (len == CAP_UNFINISHED)
        luaL_error(ms->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
    else
        lua_pushlstring(ms->L, ms->capture[i].init, (size_t)len);
}

static int push_captures(mstate_t *ms, const char *s, const char *e)
{
    int n = (ms->level == 0 && s != NULL) ? 1 : ms->level;
    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(ms, i, s, e);
    return n;
}

static void prepare(mstate_t *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    ms->L = L;
    ms->depth = MAX_DEPTH;
    ms->src_init = s;
    ms->src_end = s + ls;
    ms->p_end = p + lp;
    ms->steps = 0;
}

static void restart(mstate_t *ms)
{
    ms->level = 0;
}

/* Lua's string positions: negative from the end, clamped to [1, ...]. */
static size_t start_pos(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

static int no_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
            return 0;
    return 1;
}

/* ---- find, match ------------------------------------------------------------- */

static int find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
        const char *hit = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
        ljs__watchdog_check(L, (ls - init) / 64);
        if (hit != NULL) {
            lua_pushinteger(L, (hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
            return 2;
        }
        luaL_pushfail(L);
        return 1;
    }
    mstate_t ms;
    const char *s1 = s + init;
    int anchor = *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    prepare(&ms, L, s, ls, p, lp);
    do {
        restart(&ms);
        const char *e = match(&ms, s1, p);
        if (e != NULL) {
            poll(&ms);
            if (find) {
                lua_pushinteger(L, (s1 - s) + 1);
                lua_pushinteger(L, e - s);
                return push_captures(&ms, NULL, 0) + 2;
            }
            return push_captures(&ms, s1, e);
        }
    } while (s1++ < ms.src_end && !anchor);
    poll(&ms);
    luaL_pushfail(L);
    return 1;
}

static int l_find(lua_State *L)
{
    return find_aux(L, 1);
}

static int l_match(lua_State *L)
{
    return find_aux(L, 0);
}

/* ---- gmatch --------------------------------------------------------------------- */

typedef struct gmatch_s {
    const char *src, *last; /* where to go on; end of the last match */
} gmatch_t;

/* Upvalues: the subject, the pattern (both keep the pointers valid), the
 * state. */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    gmatch_t *gm = lua_touserdata(L, lua_upvalueindex(3));
    mstate_t ms;
    prepare(&ms, L, s, ls, p, lp);
    for (const char *src = gm->src; src <= ms.src_end; src++) {
        restart(&ms);
        const char *e = match(&ms, src, p);
        if (e != NULL && e != gm->last) {
            gm->src = gm->last = e;
            poll(&ms);
            return push_captures(&ms, src, e);
        }
    }
    gm->src = ms.src_end + 1; /* done: later calls return nothing at once */
    poll(&ms);
    return 0;
}

static int l_gmatch(lua_State *L)
{
    size_t ls;
    const char *s = luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls)
        init = ls + 1; /* start after the end: no matches */
    lua_settop(L, 2);
    gmatch_t *gm = lua_newuserdatauv(L, sizeof *gm, 0);
    gm->src = s + init;
    gm->last = NULL;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* ---- gsub ------------------------------------------------------------------------- */

static void add_string(mstate_t *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    lua_State *L = ms->L;
    const char *news = lua_tolstring(L, 3, &l);
    const char *p;
    while ((p = memchr(news, ESC, l)) != NULL) {
        luaL_addlstring(b, news, (size_t)(p - news));
        p++;
        if (p == news + l) /* '%' at the end: fall through to the error */
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        if (*p == ESC) {
            luaL_addchar(b, *p);
        } else if (isdigit((unsigned char)*p)) {
            if (*p == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else {
                push_capture(ms, *p - '1', s, e);
                luaL_tolstring(L, -1, NULL); /* positions are integers */
                lua_remove(L, -2);
                luaL_addvalue(b);
            }
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        }
        l -= (size_t)(p + 1 - news);
        news = p + 1;
    }
    luaL_addlstring(b, news, l);
}

/* Add the replacement of match s..e; returns 1 if it changed the text. */
static int add_value(mstate_t *ms, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = ms->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(ms, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(ms, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

static int l_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *last = NULL;
    if (src == NULL || p == NULL) /* never: luaL_checklstring raises instead */
        return 0;
    int tr = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    int anchor = *p == '^';
    lua_Integer n = 0;
    int changed = 0;
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                     "string/function/table");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (anchor) {
        p++;
        lp--;
    }
    mstate_t ms;
    prepare(&ms, L, src, ls, p, lp);
    while (n < max_n) {
        restart(&ms);
        const char *e = match(&ms, src, p);
        if (e != NULL && e != last) {
            n++;
            changed = add_value(&ms, &b, src, e, tr) | changed;
            src = last = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    poll(&ms);
    if (!changed) {
        lua_pushvalue(L, 1); /* nothing replaced: the subject itself */
    } else {
        luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void ljs__pattern_open(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"find", l_find}, {"match", l_match}, {"gmatch", l_gmatch}, {"gsub", l_gsub}, {NULL, NULL}};
    lua_getglobal(L, LUA_STRLIBNAME);
    luaL_setfuncs(L, fns, 0);
    lua_pop(L, 1);
}
