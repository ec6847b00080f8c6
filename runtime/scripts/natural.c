/* natural.c - `self` scalarized: the natural form turned into the fast form
 * by rewriting the compiler's own bytecode (NOTES-natural-form.md, "F3").
 *
 * A natural-form function `function(self, dt) self.x = self.x + dt end`
 * pays for a `self` table filled from every declared field and read back
 * after the call (the table wrapper, script.c). When `self` (register 0 of
 * the function) is provably used only as `self.<constant>` reads and writes
 * of declared fields (and `self.id` reads), no table is needed at all: each
 * touched field becomes a parameter register, reads become MOVEs, writes
 * become MOVE/LOADK into that register, and every return returns the
 * written fields. The function is then called like the fast form:
 * f(id, <its other parameters>, <touched fields>) -> <written fields>.
 *
 * The proof is syntactic over the function's instructions: register 0 may
 * appear only as the table of GETFIELD/SETFIELD with a constant string key;
 * any other use (a call argument, a MOVE, SELF, a variable key, a capture
 * by a nested function, a write) keeps the table tier. The chunk format is
 * Lua 5.4's (ldump.c): the header is compared byte for byte with what this
 * build's lua.h implies, every count is bounded by the dump's own length,
 * and the rewritten code is checked operand by operand before lua_load, so
 * anything unexpected is a fallback, never a crash. Instruction count and
 * order never change, so jumps, line info and the nested functions stay
 * valid; registers >= the parameter count move up by the number of touched
 * fields, in every operand that names a register (the table below). */
#include "runtime/scripts/natural.h"

#include "jobs/mem.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Lua 5.4 opcodes (lopcodes.h, 5.4.0-5.4.6) ------------------------------- */

enum {
    OPC_MOVE,
    OPC_LOADI,
    OPC_LOADF,
    OPC_LOADK,
    OPC_LOADKX,
    OPC_LOADFALSE,
    OPC_LFALSESKIP,
    OPC_LOADTRUE,
    OPC_LOADNIL,
    OPC_GETUPVAL,
    OPC_SETUPVAL,
    OPC_GETTABUP,
    OPC_GETTABLE,
    OPC_GETI,
    OPC_GETFIELD,
    OPC_SETTABUP,
    OPC_SETTABLE,
    OPC_SETI,
    OPC_SETFIELD,
    OPC_NEWTABLE,
    OPC_SELF,
    OPC_ADDI,
    OPC_ADDK,
    OPC_SUBK,
    OPC_MULK,
    OPC_MODK,
    OPC_POWK,
    OPC_DIVK,
    OPC_IDIVK,
    OPC_BANDK,
    OPC_BORK,
    OPC_BXORK,
    OPC_SHRI,
    OPC_SHLI,
    OPC_ADD,
    OPC_SUB,
    OPC_MUL,
    OPC_MOD,
    OPC_POW,
    OPC_DIV,
    OPC_IDIV,
    OPC_BAND,
    OPC_BOR,
    OPC_BXOR,
    OPC_SHL,
    OPC_SHR,
    OPC_MMBIN,
    OPC_MMBINI,
    OPC_MMBINK,
    OPC_UNM,
    OPC_BNOT,
    OPC_NOT,
    OPC_LEN,
    OPC_CONCAT,
    OPC_CLOSE,
    OPC_TBC,
    OPC_JMP,
    OPC_EQ,
    OPC_LT,
    OPC_LE,
    OPC_EQK,
    OPC_EQI,
    OPC_LTI,
    OPC_LEI,
    OPC_GTI,
    OPC_GEI,
    OPC_TEST,
    OPC_TESTSET,
    OPC_CALL,
    OPC_TAILCALL,
    OPC_RETURN,
    OPC_RETURN0,
    OPC_RETURN1,
    OPC_FORLOOP,
    OPC_FORPREP,
    OPC_TFORPREP,
    OPC_TFORCALL,
    OPC_TFORLOOP,
    OPC_SETLIST,
    OPC_CLOSURE,
    OPC_VARARG,
    OPC_VARARGPREP,
    OPC_EXTRAARG,
    OPC_COUNT
};

/* Which operands name registers. RK: C is a register unless the k bit is
 * set (then a constant). RANGE: A starts a run of registers (length in
 * range_len). EXTRA: the next word is OP_EXTRAARG data. NO: refused (only
 * vararg functions use them, and those are refused). */
enum { RA = 1, RB = 2, RC = 4, RK = 8, RANGE = 16, EXTRA = 32, NO = 64 };

static const struct {
    const char *name;
    uint8_t f;
} ops[OPC_COUNT] = {
    [OPC_MOVE] = {"MOVE", RA | RB},
    [OPC_LOADI] = {"LOADI", RA},
    [OPC_LOADF] = {"LOADF", RA},
    [OPC_LOADK] = {"LOADK", RA},
    [OPC_LOADKX] = {"LOADKX", RA | EXTRA},
    [OPC_LOADFALSE] = {"LOADFALSE", RA},
    [OPC_LFALSESKIP] = {"LFALSESKIP", RA},
    [OPC_LOADTRUE] = {"LOADTRUE", RA},
    [OPC_LOADNIL] = {"LOADNIL", RA | RANGE},
    [OPC_GETUPVAL] = {"GETUPVAL", RA},
    [OPC_SETUPVAL] = {"SETUPVAL", RA},
    [OPC_GETTABUP] = {"GETTABUP", RA},
    [OPC_GETTABLE] = {"GETTABLE", RA | RB | RC},
    [OPC_GETI] = {"GETI", RA | RB},
    [OPC_GETFIELD] = {"GETFIELD", RA | RB},
    [OPC_SETTABUP] = {"SETTABUP", RK}, /* A: an upvalue */
    [OPC_SETTABLE] = {"SETTABLE", RA | RB | RK},
    [OPC_SETI] = {"SETI", RA | RK},
    [OPC_SETFIELD] = {"SETFIELD", RA | RK},
    [OPC_NEWTABLE] = {"NEWTABLE", RA | EXTRA},
    [OPC_SELF] = {"SELF", RA | RB | RK | RANGE},
    [OPC_ADDI] = {"ADDI", RA | RB},
    [OPC_ADDK] = {"ADDK", RA | RB},
    [OPC_SUBK] = {"SUBK", RA | RB},
    [OPC_MULK] = {"MULK", RA | RB},
    [OPC_MODK] = {"MODK", RA | RB},
    [OPC_POWK] = {"POWK", RA | RB},
    [OPC_DIVK] = {"DIVK", RA | RB},
    [OPC_IDIVK] = {"IDIVK", RA | RB},
    [OPC_BANDK] = {"BANDK", RA | RB},
    [OPC_BORK] = {"BORK", RA | RB},
    [OPC_BXORK] = {"BXORK", RA | RB},
    [OPC_SHRI] = {"SHRI", RA | RB},
    [OPC_SHLI] = {"SHLI", RA | RB},
    [OPC_ADD] = {"ADD", RA | RB | RC},
    [OPC_SUB] = {"SUB", RA | RB | RC},
    [OPC_MUL] = {"MUL", RA | RB | RC},
    [OPC_MOD] = {"MOD", RA | RB | RC},
    [OPC_POW] = {"POW", RA | RB | RC},
    [OPC_DIV] = {"DIV", RA | RB | RC},
    [OPC_IDIV] = {"IDIV", RA | RB | RC},
    [OPC_BAND] = {"BAND", RA | RB | RC},
    [OPC_BOR] = {"BOR", RA | RB | RC},
    [OPC_BXOR] = {"BXOR", RA | RB | RC},
    [OPC_SHL] = {"SHL", RA | RB | RC},
    [OPC_SHR] = {"SHR", RA | RB | RC},
    [OPC_MMBIN] = {"MMBIN", RA | RB},
    [OPC_MMBINI] = {"MMBINI", RA},
    [OPC_MMBINK] = {"MMBINK", RA},
    [OPC_UNM] = {"UNM", RA | RB},
    [OPC_BNOT] = {"BNOT", RA | RB},
    [OPC_NOT] = {"NOT", RA | RB},
    [OPC_LEN] = {"LEN", RA | RB},
    [OPC_CONCAT] = {"CONCAT", RA | RANGE},
    [OPC_CLOSE] = {"CLOSE", RA},
    [OPC_TBC] = {"TBC", RA},
    [OPC_JMP] = {"JMP", 0},
    [OPC_EQ] = {"EQ", RA | RB},
    [OPC_LT] = {"LT", RA | RB},
    [OPC_LE] = {"LE", RA | RB},
    [OPC_EQK] = {"EQK", RA},
    [OPC_EQI] = {"EQI", RA},
    [OPC_LTI] = {"LTI", RA},
    [OPC_LEI] = {"LEI", RA},
    [OPC_GTI] = {"GTI", RA},
    [OPC_GEI] = {"GEI", RA},
    [OPC_TEST] = {"TEST", RA},
    [OPC_TESTSET] = {"TESTSET", RA | RB},
    [OPC_CALL] = {"CALL", RA | RANGE},
    [OPC_TAILCALL] = {"TAILCALL", RA | RANGE},
    [OPC_RETURN] = {"RETURN", RA | RANGE},
    [OPC_RETURN0] = {"RETURN0", 0},
    [OPC_RETURN1] = {"RETURN1", RA},
    [OPC_FORLOOP] = {"FORLOOP", RA | RANGE},
    [OPC_FORPREP] = {"FORPREP", RA | RANGE},
    [OPC_TFORPREP] = {"TFORPREP", RA | RANGE},
    [OPC_TFORCALL] = {"TFORCALL", RA | RANGE},
    [OPC_TFORLOOP] = {"TFORLOOP", RA | RANGE},
    [OPC_SETLIST] = {"SETLIST", RA | RANGE},
    [OPC_CLOSURE] = {"CLOSURE", RA},
    [OPC_VARARG] = {"VARARG", NO},
    [OPC_VARARGPREP] = {"VARARGPREP", NO},
    [OPC_EXTRAARG] = {"EXTRAARG", 0},
};

/* Instruction fields (lopcodes.h: op 7 bits, A 8, k 1, B 8, C 8; Bx 17). */
#define I_OP(i) ((unsigned)((i)&0x7fu))
#define I_A(i) ((unsigned)(((i) >> 7) & 0xffu))
#define I_K(i) ((unsigned)(((i) >> 15) & 1u))
#define I_B(i) ((unsigned)(((i) >> 16) & 0xffu))
#define I_C(i) ((unsigned)(((i) >> 24) & 0xffu))
#define I_BX(i) ((unsigned)((i) >> 15))
#define MK_ABCK(o, a, b, c, k) \
    ((uint32_t)(o) | (uint32_t)(a) << 7 | (uint32_t)(k) << 15 | (uint32_t)(b) << 16 | (uint32_t)(c) << 24)
#define MK_ABX(o, a, bx) ((uint32_t)(o) | (uint32_t)(a) << 7 | (uint32_t)(bx) << 15)
#define SET_A(i, a) (((i) & ~(0xffu << 7)) | (uint32_t)(a) << 7)
#define SET_B(i, b) (((i) & ~(0xffu << 16)) | (uint32_t)(b) << 16)
#define SET_C(i, c) (((i) & ~(0xffu << 24)) | (uint32_t)(c) << 24)

#define MAX_REGS 255
#define MAX_FIELDS 256

/* Registers of A's run starting at A, or -1 when it runs to the stack top. */
static int range_len(uint32_t i)
{
    unsigned b = I_B(i), c = I_C(i);
    switch (I_OP(i)) {
    case OPC_LOADNIL:
        return (int)b + 1;
    case OPC_CONCAT:
        return (int)b;
    case OPC_SELF:
        return 2;
    case OPC_CALL:
        return b == 0 || c == 0 ? -1 : (int)(b > c - 1 ? b : c - 1);
    case OPC_TAILCALL:
    case OPC_SETLIST:
        return b == 0 ? -1 : (int)b + 1;
    case OPC_RETURN:
        return b == 0 ? -1 : (int)b - 1;
    case OPC_FORLOOP:
    case OPC_FORPREP:
    case OPC_TFORPREP:
        return 4;
    case OPC_TFORCALL:
        return 4 + (int)c;
    case OPC_TFORLOOP:
        return 5;
    default:
        return 1;
    }
}

/* ---- reading a dump ------------------------------------------------------------ */

typedef struct rd_s {
    const uint8_t *p;
    size_t n, pos;
    int bad;
} rd_t;

static uint8_t rd_byte(rd_t *r)
{
    if (r->pos >= r->n) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->pos++];
}

/* ldump.c's dumpSize: 7 bits per byte, most significant first, the last
 * byte marked with 0x80. Bounded by the dump's length (every count below
 * is a number of items each at least one byte long). */
static size_t rd_varint(rd_t *r, size_t limit)
{
    size_t x = 0;
    for (int k = 0; k < 10; k++) {
        uint8_t b = rd_byte(r);
        if (r->bad)
            return 0;
        x = (x << 7) | (b & 0x7fu);
        if (x > limit) {
            r->bad = 1;
            return 0;
        }
        if (b & 0x80u)
            return x;
    }
    r->bad = 1;
    return 0;
}

/* A count or an offset: never more than the dump's length. */
static size_t rd_size(rd_t *r)
{
    return rd_varint(r, r->n);
}

/* A line number: any int. */
static size_t rd_line(rd_t *r)
{
    return rd_varint(r, 0x7fffffff);
}

static void rd_skip(rd_t *r, size_t k)
{
    if (r->bad || k > r->n - r->pos)
        r->bad = 1;
    else
        r->pos += k;
}

/* A string: size+1 then the bytes, 0 for NULL. Returns its offset. */
static size_t rd_string(rd_t *r, size_t *len)
{
    size_t sz = rd_size(r);
    *len = sz ? sz - 1 : 0;
    size_t at = r->pos;
    if (sz)
        rd_skip(r, sz - 1);
    return at;
}

typedef struct kinfo_s {
    uint8_t tag; /* LUA_VSHRSTR 0x04 etc. */
    size_t off, len;
} kinfo_t;

/* What the rewrite needs of the top-level function. */
typedef struct fn_s {
    size_t np_off; /* numparams; is_vararg and maxstacksize follow */
    size_t code_off;
    uint32_t ncode;
    kinfo_t *k; /* scratch userdata */
    uint32_t nk;
    uint32_t nups;
    uint32_t nprotos;
    size_t *child_ups; /* offset of each child's upvalue descriptors */
    uint32_t *child_nups;
    size_t line_off; /* lineinfo bytes */
    uint32_t nline;
    size_t absline_off;
    uint32_t nabsline;
    size_t locvars_n_off, locvars_off; /* the count, then the entries */
    uint32_t nlocvars;
    size_t after_params_off; /* end of the first np locvars (when they are the params) */
    int params_named;
} fn_t;

static void skip_function(rd_t *r, int depth);

static void skip_constants(rd_t *r, kinfo_t *k, uint32_t n)
{
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint8_t tag = rd_byte(r);
        size_t off = r->pos, len = 0;
        switch (tag) {
        case 0x00: /* nil */
        case 0x01: /* false */
        case 0x11: /* true */
            break;
        case 0x03: /* integer */
        case 0x13: /* float */
            rd_skip(r, 8);
            break;
        case 0x04: /* short string */
        case 0x14: /* long string */
            off = rd_string(r, &len);
            break;
        default:
            r->bad = 1;
        }
        if (k != NULL)
            k[i] = (kinfo_t){tag, off, len};
    }
}

static void skip_debug(rd_t *r)
{
    rd_skip(r, rd_size(r)); /* lineinfo */
    size_t n = rd_size(r);
    for (size_t i = 0; i < n && !r->bad; i++)
        (void)rd_size(r), (void)rd_line(r);
    n = rd_size(r);
    for (size_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        (void)rd_string(r, &len);
        (void)rd_size(r), (void)rd_size(r);
    }
    n = rd_size(r);
    for (size_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        (void)rd_string(r, &len);
    }
}

static void skip_head(rd_t *r)
{
    size_t len;
    (void)rd_string(r, &len); /* source */
    (void)rd_line(r);         /* linedefined */
    (void)rd_line(r);         /* lastlinedefined */
    rd_skip(r, 3);            /* numparams, is_vararg, maxstacksize */
}

static void skip_function(rd_t *r, int depth)
{
    if (depth > 250) {
        r->bad = 1;
        return;
    }
    skip_head(r);
    rd_skip(r, rd_size(r) * 4);
    skip_constants(r, NULL, (uint32_t)rd_size(r));
    rd_skip(r, rd_size(r) * 3);
    size_t n = rd_size(r);
    for (size_t i = 0; i < n && !r->bad; i++)
        skip_function(r, depth + 1);
    skip_debug(r);
}

/* Scratch memory as a userdata on the stack: a raise cannot leak it. */
static void *scratch(lua_State *L, size_t size)
{
    void *p = lua_newuserdatauv(L, size ? size : 1, 0);
    memset(p, 0, size ? size : 1);
    return p;
}

/* Parse the top-level function of the dump `r` (after the header). */
static void parse_top(lua_State *L, rd_t *r, fn_t *f)
{
    skip_head(r);
    f->np_off = r->pos - 3;
    f->ncode = (uint32_t)rd_size(r);
    f->code_off = r->pos;
    rd_skip(r, (size_t)f->ncode * 4);
    f->nk = (uint32_t)rd_size(r);
    if (r->bad)
        return;
    f->k = scratch(L, sizeof *f->k * f->nk);
    skip_constants(r, f->k, f->nk);
    f->nups = (uint32_t)rd_size(r);
    rd_skip(r, (size_t)f->nups * 3);
    f->nprotos = (uint32_t)rd_size(r);
    if (r->bad)
        return;
    f->child_ups = scratch(L, sizeof *f->child_ups * f->nprotos);
    f->child_nups = scratch(L, sizeof *f->child_nups * f->nprotos);
    for (uint32_t i = 0; i < f->nprotos && !r->bad; i++) {
        skip_head(r);
        rd_skip(r, rd_size(r) * 4);
        skip_constants(r, NULL, (uint32_t)rd_size(r));
        f->child_nups[i] = (uint32_t)rd_size(r);
        f->child_ups[i] = r->pos;
        rd_skip(r, (size_t)f->child_nups[i] * 3);
        size_t n = rd_size(r);
        for (size_t j = 0; j < n && !r->bad; j++)
            skip_function(r, 1);
        skip_debug(r);
    }
    f->nline = (uint32_t)rd_size(r);
    f->line_off = r->pos;
    rd_skip(r, f->nline);
    f->nabsline = (uint32_t)rd_size(r);
    f->absline_off = r->pos;
    for (uint32_t i = 0; i < f->nabsline && !r->bad; i++)
        (void)rd_size(r), (void)rd_line(r);
    f->locvars_n_off = r->pos;
    f->nlocvars = (uint32_t)rd_size(r);
    f->locvars_off = r->pos;
    uint32_t np = r->bad ? 0 : r->p[f->np_off];
    f->params_named = f->nlocvars >= np;
    for (uint32_t i = 0; i < f->nlocvars && !r->bad; i++) {
        size_t len;
        (void)rd_string(r, &len);
        size_t startpc = rd_size(r);
        (void)rd_size(r);
        if (i < np && startpc != 0)
            f->params_named = 0;
        if (i + 1 == np)
            f->after_params_off = r->pos;
    }
    size_t n = rd_size(r); /* upvalue names */
    for (size_t i = 0; i < n && !r->bad; i++) {
        size_t len;
        (void)rd_string(r, &len);
    }
    if (r->pos != r->n)
        r->bad = 1;
}

/* Source line of instruction pc (ldebug.c's luaG_getfuncline), or -1. */
static int line_of(const rd_t *r, const fn_t *f, uint32_t pc, int linedefined)
{
    if (f->nline != f->ncode || pc >= f->ncode)
        return -1;
    rd_t a = *r;
    a.pos = f->absline_off;
    int line = linedefined;
    int32_t base = -1;
    for (uint32_t i = 0; i < f->nabsline; i++) {
        size_t apc = rd_size(&a), aline = rd_line(&a);
        if (a.bad || apc > pc)
            break;
        base = (int32_t)apc;
        line = (int)aline;
    }
    for (int32_t p = base + 1; p <= (int32_t)pc; p++)
        line += (int8_t)r->p[f->line_off + (size_t)p];
    return line;
}

static uint32_t code_at(const uint8_t *buf, const fn_t *f, uint32_t pc)
{
    uint32_t i;
    memcpy(&i, buf + f->code_off + (size_t)pc * 4, 4);
    return i;
}

static void code_put(uint8_t *buf, const fn_t *f, uint32_t pc, uint32_t i)
{
    memcpy(buf + f->code_off + (size_t)pc * 4, &i, 4);
}

/* ---- analysis ------------------------------------------------------------------ */

typedef struct an_s {
    const ljs__world_t *world;
    const uint32_t *field_ids;
    uint32_t nfields;
    uint32_t np;
    uint8_t use[MAX_FIELDS]; /* 1 read, 2 written */
    int reg[MAX_FIELDS];     /* register of declared field i, or -1 */
    uint32_t n, nwrites;
    char *why;
    size_t why_size;
    int line;
} an_t;

/* Index of the declared field named by constant kc, -2 for "id", -1 if
 * none (or not a short string). */
static int key_field(const an_t *a, const rd_t *r, const fn_t *f, unsigned kc, const char **name, size_t *len)
{
    *name = "?";
    *len = 1;
    if (kc >= f->nk || f->k[kc].tag != 0x04)
        return -1;
    *name = (const char *)r->p + f->k[kc].off;
    *len = f->k[kc].len;
    if (*len == 2 && !memcmp(*name, "id", 2))
        return -2;
    for (uint32_t i = 0; i < a->nfields; i++) {
        const char *fn = a->world->fields[a->field_ids[i]].name;
        if (strlen(fn) == *len && !memcmp(fn, *name, *len))
            return (int)i;
    }
    return -1;
}

static int refuse(an_t *a, const char *fmt, const char *detail, int dlen)
{
    char msg[128];
    snprintf(msg, sizeof msg, fmt, dlen, detail);
    if (a->line > 0)
        snprintf(a->why, a->why_size, "%s at line %d", msg, a->line);
    else
        snprintf(a->why, a->why_size, "%s", msg);
    return 0;
}

/* What a use of register 0 by `op` means, for the script author. */
static const char *self_use(unsigned op)
{
    switch (op) {
    case OPC_CALL:
    case OPC_TAILCALL:
        return "self passed to a function (%.*s)";
    case OPC_SELF:
        return "self:method() call (%.*s)";
    case OPC_GETTABLE:
    case OPC_GETI:
    case OPC_SETTABLE:
    case OPC_SETI:
        return "self indexed by a non-constant key (%.*s)";
    case OPC_MOVE:
        return "self passed to a function or copied into a variable (%.*s)";
    case OPC_RETURN:
    case OPC_RETURN1:
        return "self returned (%.*s)";
    default:
        return "self used by %.*s";
    }
}

/* 1 if op's A is its destination (so A == 0 overwrites self). */
static int writes_a(unsigned op)
{
    return (op <= OPC_GETFIELD && op != OPC_SETUPVAL) || (op >= OPC_NEWTABLE && op <= OPC_SHR) ||
           (op >= OPC_UNM && op <= OPC_CONCAT) || op == OPC_CLOSURE;
}

/* Pass 1: is register 0 only self.<declared> / self.id? Fills use[]. */
static int check_code(an_t *a, const rd_t *r, const fn_t *f, int linedefined)
{
    for (uint32_t pc = 0; pc < f->ncode; pc++) {
        uint32_t i = code_at(r->p, f, pc);
        unsigned op = I_OP(i), A = I_A(i), B = I_B(i), C = I_C(i);
        a->line = line_of(r, f, pc, linedefined);
        if (op >= OPC_COUNT)
            return refuse(a, "unknown opcode %.*s", "", 0);
        uint8_t fl = ops[op].f;
        const char *nm = ops[op].name;
        if (fl & NO)
            return refuse(a, "vararg code (%.*s)", nm, (int)strlen(nm));
        if ((fl & EXTRA || (op == OPC_SETLIST && I_K(i))) &&
            (pc + 1 >= f->ncode || I_OP(code_at(r->p, f, pc + 1)) != OPC_EXTRAARG))
            return refuse(a, "unexpected code after %.*s", nm, (int)strlen(nm));
        if (op == OPC_TAILCALL && (pc + 1 >= f->ncode || I_OP(code_at(r->p, f, pc + 1)) != OPC_RETURN))
            return refuse(a, "a tail call not followed by RETURN%.*s", "", 0);
        if (op == OPC_GETFIELD && B == 0) {
            const char *k;
            size_t len;
            int fi = key_field(a, r, f, C, &k, &len);
            if (fi == -1)
                return refuse(a, "self.%.*s is not a declared field", k, (int)len);
            if (A == 0)
                return refuse(a, "self reassigned%.*s", "", 0);
            if (fi >= 0)
                a->use[fi] |= 1;
            continue;
        }
        if (op == OPC_SETFIELD && A == 0) {
            const char *k;
            size_t len;
            int fi = key_field(a, r, f, B, &k, &len);
            if (fi == -1)
                return refuse(a, "self.%.*s is not a declared field", k, (int)len);
            if (fi == -2)
                return refuse(a, "self.id assigned%.*s", "", 0);
            if (!I_K(i) && C == 0)
                return refuse(a, "self stored in its own field%.*s", "", 0);
            if (I_K(i) && C >= f->nk)
                return refuse(a, "bad constant%.*s", "", 0);
            a->use[fi] |= 2;
            continue;
        }
        if ((fl & RA) && A == 0)
            return refuse(a, writes_a(op) ? "self reassigned (%.*s)" : self_use(op), nm, (int)strlen(nm));
        if (((fl & RB) && B == 0) || ((fl & RC) && C == 0) || ((fl & RK) && !I_K(i) && C == 0))
            return refuse(a, self_use(op), nm, (int)strlen(nm));
        if ((fl & RANGE) && A < a->np) {
            int len = range_len(i);
            if (len < 0 || A + (unsigned)len > a->np)
                return refuse(a, "a register run across the parameters (%.*s)", nm, (int)strlen(nm));
        }
    }
    a->line = 0;
    for (uint32_t p = 0; p < f->nprotos; p++)
        for (uint32_t u = 0; u < f->child_nups[p]; u++) {
            const uint8_t *d = r->p + f->child_ups[p] + (size_t)u * 3;
            if (d[0] && d[1] == 0)
                return refuse(a, "self captured by a nested function%.*s", "", 0);
        }
    return 1;
}

/* ---- rewrite ------------------------------------------------------------------- */

static unsigned shift(const an_t *a, unsigned r)
{
    return r >= a->np ? r + a->n : r;
}

/* Pass 2: the new code, in place in `out` (same offsets as the dump). */
static void rewrite_code(const an_t *a, const rd_t *r, const fn_t *f, uint8_t *out)
{
    unsigned ret_a = a->np, ret_b = a->nwrites + 1;
    for (uint32_t pc = 0; pc < f->ncode; pc++) {
        uint32_t i = code_at(r->p, f, pc);
        unsigned op = I_OP(i), A = I_A(i), B = I_B(i), C = I_C(i);
        uint8_t fl = ops[op].f;
        const char *k;
        size_t len;
        if (op == OPC_GETFIELD && B == 0) {
            int fi = key_field(a, r, f, C, &k, &len);
            i = MK_ABCK(OPC_MOVE, shift(a, A), fi == -2 ? 0u : (unsigned)a->reg[fi], 0, 0);
        } else if (op == OPC_SETFIELD && A == 0) {
            unsigned reg = (unsigned)a->reg[key_field(a, r, f, B, &k, &len)];
            i = I_K(i) ? MK_ABX(OPC_LOADK, reg, C) : MK_ABCK(OPC_MOVE, reg, shift(a, C), 0, 0);
        } else if (op == OPC_RETURN) {
            i = MK_ABCK(OPC_RETURN, ret_a, ret_b, C, I_K(i));
        } else if (op == OPC_RETURN0 || op == OPC_RETURN1) {
            /* No upvalue to close here (else the compiler would have used
             * RETURN k): keep the VM's fast returns where they fit. */
            i = a->nwrites == 0   ? MK_ABCK(OPC_RETURN0, 0, 0, 0, 0)
                : a->nwrites == 1 ? MK_ABCK(OPC_RETURN1, ret_a, 0, 0, 0)
                                  : MK_ABCK(OPC_RETURN, ret_a, ret_b, 0, 0);
        } else {
            if (op == OPC_TAILCALL)
                i = MK_ABCK(OPC_CALL, A, B, 1, 0); /* the RETURN after it returns the fields */
            if (fl & RA)
                i = SET_A(i, shift(a, A));
            if (fl & RB)
                i = SET_B(i, shift(a, B));
            if ((fl & RC) || ((fl & RK) && !I_K(i)))
                i = SET_C(i, shift(a, C));
        }
        code_put(out, f, pc, i);
    }
}

/* Every register operand of the new code within the new frame, every
 * constant and function index within its table. Guards the rewrite itself:
 * a bug here must become a fallback, never a VM reading past its frame. */
static int verify_code(const uint8_t *out, const fn_t *f, unsigned maxstack)
{
    for (uint32_t pc = 0; pc < f->ncode; pc++) {
        uint32_t i = code_at(out, f, pc);
        unsigned op = I_OP(i);
        if (op >= OPC_COUNT)
            return 0;
        uint8_t fl = ops[op].f;
        if (op == OPC_RETURN) { /* A may be the frame's end when it returns nothing */
            if (I_B(i) == 0 || I_A(i) + I_B(i) - 1 > maxstack)
                return 0;
            continue;
        }
        if (((fl & RA) && I_A(i) >= maxstack) || ((fl & RB) && I_B(i) >= maxstack) ||
            (((fl & RC) || ((fl & RK) && !I_K(i))) && I_C(i) >= maxstack))
            return 0;
        if ((fl & RANGE) && range_len(i) > 0 && I_A(i) + (unsigned)range_len(i) > maxstack)
            return 0;
        if ((op == OPC_LOADK && I_BX(i) >= f->nk) || (op == OPC_CLOSURE && I_BX(i) >= f->nprotos))
            return 0;
    }
    return 1;
}

static size_t put_size(uint8_t *p, size_t x)
{
    uint8_t buf[16];
    int n = 0;
    do {
        buf[15 - n++] = (uint8_t)(x & 0x7f);
        x >>= 7;
    } while (x != 0);
    buf[15] |= 0x80;
    memcpy(p, buf + 16 - n, (size_t)n);
    return (size_t)n;
}

/* The header this build writes (ldump.c dumpHeader), without the byte of
 * the main function's upvalue count that follows it. */
static size_t expected_header(uint8_t *h)
{
    size_t n = 0;
    memcpy(h, LUA_SIGNATURE, 4);
    n = 4;
    h[n++] = 0x54; /* LUAC_VERSION */
    h[n++] = 0;    /* LUAC_FORMAT */
    memcpy(h + n, "\x19\x93\r\n\x1a\n", 6);
    n += 6;
    h[n++] = 4; /* sizeof(Instruction) */
    h[n++] = (uint8_t)sizeof(lua_Integer);
    h[n++] = (uint8_t)sizeof(lua_Number);
    lua_Integer li = 0x5678;
    lua_Number ln = 370.5;
    memcpy(h + n, &li, sizeof li);
    n += sizeof li;
    memcpy(h + n, &ln, sizeof ln);
    n += sizeof ln;
    return n;
}

static int count_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    (void)p;
    *(size_t *)ud += sz;
    return 0;
}

typedef struct cursor_s {
    uint8_t *p;
    size_t n, pos;
} cursor_t;

static int copy_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    cursor_t *c = ud;
    if (sz > c->n - c->pos)
        return 1;
    memcpy(c->p + c->pos, p, sz);
    c->pos += sz;
    return 0;
}

static const char *chunk_reader(lua_State *L, void *ud, size_t *sz)
{
    (void)L;
    cursor_t *c = ud;
    *sz = c->n - c->pos;
    c->pos = c->n;
    return *sz ? (const char *)c->p : NULL;
}

/* Build the new chunk: the dump with the code, numparams, maxstacksize and
 * the children's upvalue descriptors edited in place, and n locals named
 * "self.<field>" inserted after the parameters (so error messages name
 * them). Returns its length. */
static size_t build(lua_State *L, const an_t *a, const rd_t *r, const fn_t *f, uint8_t **outp)
{
    int named = f->params_named && a->np > 0;
    size_t extra = 16;
    for (uint32_t i = 0; i < a->nfields; i++)
        if (a->reg[i] >= 0)
            extra += 5 + strlen(a->world->fields[a->field_ids[i]].name) + 16;
    uint8_t *out = scratch(L, r->n + extra);
    memcpy(out, r->p, f->locvars_n_off);
    out[f->np_off] = (uint8_t)(a->np + a->n);
    out[f->np_off + 2] = (uint8_t)(r->p[f->np_off + 2] + a->n);
    rewrite_code(a, r, f, out);
    for (uint32_t p = 0; p < f->nprotos; p++)
        for (uint32_t u = 0; u < f->child_nups[p]; u++) {
            uint8_t *d = out + f->child_ups[p] + (size_t)u * 3;
            if (d[0])
                d[1] = (uint8_t)shift(a, d[1]);
        }
    size_t o = f->locvars_n_off;
    if (!named) {
        memcpy(out + o, r->p + o, r->n - o);
        *outp = out;
        return r->n;
    }
    o += put_size(out + o, f->nlocvars + a->n);
    memcpy(out + o, r->p + f->locvars_off, f->after_params_off - f->locvars_off);
    o += f->after_params_off - f->locvars_off;
    /* In register order: the written fields, then the read ones. */
    for (uint32_t reg = a->np; reg < a->np + a->n; reg++)
        for (uint32_t i = 0; i < a->nfields; i++)
            if (a->reg[i] == (int)reg) {
                const char *nm = a->world->fields[a->field_ids[i]].name;
                size_t len = strlen(nm);
                o += put_size(out + o, len + 5 + 1);
                static const uint8_t prefix[5] = {'s', 'e', 'l', 'f', '.'};
                memcpy(out + o, prefix, sizeof prefix); /* a dumped string: bytes, no NUL */
                for (size_t k = 0; k < len; k++)
                    out[o + 5 + k] = (uint8_t)nm[k];
                o += 5 + len;
                o += put_size(out + o, 0);
                o += put_size(out + o, f->ncode);
            }
    memcpy(out + o, r->p + f->after_params_off, r->n - f->after_params_off);
    o += r->n - f->after_params_off;
    *outp = out;
    return o;
}

static void fallback(ljs__natural_t *out, const char *why)
{
    out->scalar = 0;
    snprintf(out->why, sizeof out->why, "%s", why);
}

void ljs__natural_scalarize(lua_State *L, const ljs__world_t *world, const uint32_t *field_ids,
                            uint32_t nfields, ljs__natural_t *out)
{
    memset(out, 0, sizeof *out);
    int fn = lua_gettop(L);
    if (!lua_isfunction(L, fn) || lua_iscfunction(L, fn))
        return fallback(out, "not a Lua function");
    if (nfields >= MAX_FIELDS)
        return fallback(out, "too many fields");
    size_t size = 0;
    lua_dump(L, count_writer, &size, 0);
    cursor_t c = {scratch(L, size), size, 0};
    lua_pushvalue(L, fn);
    int drc = lua_dump(L, copy_writer, &c, 0);
    lua_pop(L, 1);
    uint8_t hdr[64];
    size_t hn = expected_header(hdr);
    if (drc != 0 || c.pos != size || size < hn + 1 || memcmp(c.p, hdr, hn) != 0) {
        lua_settop(L, fn);
        return fallback(out, "unexpected bytecode format");
    }
    rd_t r = {c.p, size, hn + 1, 0};
    fn_t f;
    memset(&f, 0, sizeof f);
    size_t head = r.pos;
    size_t srclen;
    (void)rd_string(&r, &srclen);
    int linedefined = (int)rd_line(&r);
    r.pos = head;
    parse_top(L, &r, &f);
    if (r.bad) {
        lua_settop(L, fn);
        return fallback(out, "unexpected bytecode format");
    }
    unsigned np = c.p[f.np_off], vararg = c.p[f.np_off + 1], maxstack = c.p[f.np_off + 2];
    an_t a;
    memset(&a, 0, sizeof a);
    a.world = world;
    a.field_ids = field_ids;
    a.nfields = nfields;
    a.np = np;
    a.why = out->why;
    a.why_size = sizeof out->why;
    if (np < 1 || vararg) {
        lua_settop(L, fn);
        return fallback(out, np < 1 ? "no self parameter" : "a vararg function (...)");
    }
    if (!check_code(&a, &r, &f, linedefined)) {
        lua_settop(L, fn);
        out->scalar = 0;
        return;
    }
    /* Layout: written fields first, then the fields only read, each in
     * declaration order, so every worker derives the same one. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < nfields; i++) {
            if (pass == 0)
                a.reg[i] = -1;
            if ((pass == 0 && (a.use[i] & 2)) || (pass == 1 && a.use[i] == 1))
                a.reg[i] = (int)(np + a.n++);
            if (pass == 0 && (a.use[i] & 2))
                a.nwrites++;
        }
    if (maxstack + a.n > MAX_REGS) {
        lua_settop(L, fn);
        return fallback(out, "too many registers with the fields as locals");
    }
    uint8_t *chunk;
    size_t clen = build(L, &a, &r, &f, &chunk);
    fn_t nf = f;
    if (!verify_code(chunk, &nf, maxstack + a.n)) {
        lua_settop(L, fn);
        return fallback(out, "internal: the rewritten code failed its check (a bug; please report)");
    }
    cursor_t in = {chunk, clen, 0};
    int st = lua_load(L, chunk_reader, &in, "=(ljs natural form)", "b");
    if (st == LUA_ERRMEM)
        lua_error(L);
    if (st != LUA_OK) {
        char why[160];
        snprintf(why, sizeof why, "internal: the rewritten chunk did not load (%s)", lua_tostring(L, -1));
        lua_settop(L, fn);
        return fallback(out, why);
    }
    /* Module locals stay shared with the original closure. */
    for (int u = 1; lua_getupvalue(L, fn, u) != NULL; u++) {
        lua_pop(L, 1);
        if (lua_getupvalue(L, -1, u) == NULL)
            break;
        lua_pop(L, 1);
        lua_upvaluejoin(L, -1, u, fn, u);
    }
    lua_replace(L, fn);
    lua_settop(L, fn);
    out->ids = ljs__malloc(sizeof *out->ids * (a.n ? a.n : 1));
    if (out->ids == NULL)
        luaL_error(L, "out of memory");
    for (uint32_t i = 0; i < nfields; i++)
        if (a.reg[i] >= 0)
            out->ids[(uint32_t)a.reg[i] - np] = field_ids[i];
    out->scalar = 1;
    out->np = np;
    out->n = a.n;
    out->nwrites = a.nwrites;
}

int ljs__natural_same(const ljs__natural_t *a, const ljs__natural_t *b)
{
    if (a->scalar != b->scalar)
        return 0;
    if (!a->scalar)
        return 1;
    return a->np == b->np && a->n == b->n && a->nwrites == b->nwrites &&
           (a->n == 0 || memcmp(a->ids, b->ids, sizeof *a->ids * a->n) == 0);
}
