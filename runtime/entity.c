/* entity.c - the host's entity, tag and field API (owner thread, between
 * frames). Structural changes apply at once: no frame is running. */
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/scripts/script_host.h"

#include <math.h>
#include <string.h>

static int not_in_frame(const ljs_runtime_t *rt, const char *fn)
{
    if (rt->in_frame)
        return ljs__error(LJS_EBUSY, "%s: not allowed while a frame is running", fn);
    return LJS_OK;
}

int ljs_entity_create(ljs_runtime_t *rt, ljs_entity_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_entity_create");
    if (rt == NULL || out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_entity_create: NULL argument");
    int rc = not_in_frame(rt, "ljs_entity_create");
    if (rc == LJS_OK)
        rc = ljs__world_create(&rt->world, &out->id);
    return rc;
}

/* Used by ljs_entity_destroy and by scripts' destroy() at frame end. */
int ljs__entity_destroy(ljs_runtime_t *rt, uint64_t id)
{
    int64_t slot = ljs__world_slot(&rt->world, id);
    if (slot < 0)
        return LJS_ENOENT;
    ljs__escripts_t *es = &rt->world.escripts[slot];
    while (es->n > 0)
        ljs__script_detach_slot(rt, (uint32_t)slot, es->ids[es->n - 1]);
    return ljs__world_destroy(&rt->world, id);
}

int ljs_entity_destroy(ljs_runtime_t *rt, ljs_entity_t e)
{
    LJS_CHECK_OWNER(rt, "ljs_entity_destroy");
    if (rt == NULL)
        return ljs__error(LJS_EINVAL, "ljs_entity_destroy: rt is NULL");
    int rc = not_in_frame(rt, "ljs_entity_destroy");
    if (rc != LJS_OK)
        return rc;
    if (ljs__entity_destroy(rt, e.id) != LJS_OK)
        return ljs__error(LJS_ENOENT, "entity " LJS_ENTITY_FMT " is not alive", LJS_ENTITY_ARGS(e.id));
    return LJS_OK;
}

int ljs_entity_alive(const ljs_runtime_t *rt, ljs_entity_t e)
{
    if (ljs__owner_check(rt, "ljs_entity_alive") != LJS_OK)
        return 0; /* a predicate: "no", with the reason in ljs_last_error */
    return rt != NULL && ljs__world_slot(&rt->world, e.id) >= 0;
}

uint32_t ljs_entity_count(const ljs_runtime_t *rt)
{
    if (ljs__owner_check(rt, "ljs_entity_count") != LJS_OK)
        return 0;
    return rt != NULL ? rt->world.live : 0;
}

int ljs_entity_tag(ljs_runtime_t *rt, ljs_entity_t e, const char *tag, int on)
{
    LJS_CHECK_OWNER(rt, "ljs_entity_tag");
    if (rt == NULL || tag == NULL || tag[0] == '\0')
        return ljs__error(LJS_EINVAL, "ljs_entity_tag: bad argument");
    int rc = not_in_frame(rt, "ljs_entity_tag");
    if (rc != LJS_OK)
        return rc;
    int64_t slot = ljs__world_slot(&rt->world, e.id);
    if (slot < 0)
        return ljs__error(LJS_ENOENT, "entity " LJS_ENTITY_FMT " is not alive", LJS_ENTITY_ARGS(e.id));
    int bit = ljs__world_tag_bit(&rt->world, tag, on);
    if (bit < 0)
        return on ? ljs__error(LJS_EFULL, "more than %d tag names", LJS_MAX_TAGS) : LJS_OK;
    uint64_t tags = rt->world.tags[slot];
    ljs__world_set_tags(&rt->world, (uint32_t)slot, on ? tags | (1ull << bit) : tags & ~(1ull << bit));
    return LJS_OK;
}

int ljs_entity_has_tag(const ljs_runtime_t *rt, ljs_entity_t e, const char *tag)
{
    if (ljs__owner_check(rt, "ljs_entity_has_tag") != LJS_OK)
        return 0; /* a predicate: "no", with the reason in ljs_last_error */
    if (rt == NULL || tag == NULL)
        return 0;
    int64_t slot = ljs__world_slot(&rt->world, e.id);
    int bit = ljs__world_tag_bit((ljs__world_t *)&rt->world, tag, 0);
    return slot >= 0 && bit >= 0 && (rt->world.tags[slot] >> bit) & 1;
}

static int scalar_type(ljs_type_t t)
{
    return t == LJS_TNUMBER || t == LJS_TINTEGER || t == LJS_TBOOLEAN || t == LJS_TSTRING || t == LJS_TENTITY;
}

static int declare(ljs_runtime_t *rt, const char *name, ljs__ftype_t t)
{
    int rc = not_in_frame(rt, "ljs_field_declare");
    if (rc != LJS_OK)
        return rc;
    int f = ljs__world_field_declare_t(&rt->world, name, t);
    if (f == LJS_ETYPE) {
        char had[64], now[64];
        int old = ljs__world_field_find(&rt->world, name);
        return ljs__error(LJS_ETYPE, "field '%s' is declared as %s; it cannot become %s", name,
                          ljs__ftype_name(ljs__field_ftype(&rt->world.fields[old]), had, sizeof had),
                          ljs__ftype_name(t, now, sizeof now));
    }
    return f < 0 ? ljs__error(f, "cannot declare field '%s'", name) : LJS_OK;
}

int ljs_field_declare(ljs_runtime_t *rt, const char *name, ljs_type_t type)
{
    LJS_CHECK_OWNER(rt, "ljs_field_declare");
    if (rt == NULL || name == NULL || name[0] == '\0' || !scalar_type(type))
        return ljs__error(LJS_EINVAL, "ljs_field_declare: bad name or type");
    return declare(rt, name, (ljs__ftype_t){type, LJS_TNIL, 0});
}

int ljs_field_declare_list(ljs_runtime_t *rt, const char *name, ljs_type_t elem, uint32_t maxlen)
{
    LJS_CHECK_OWNER(rt, "ljs_field_declare_list");
    if (rt == NULL || name == NULL || name[0] == '\0' || !scalar_type(elem) || maxlen < 1 ||
        maxlen > LJS_LIST_MAX)
        return ljs__error(LJS_EINVAL, "ljs_field_declare_list: bad name, element type or maxlen (1 to %d)",
                          LJS_LIST_MAX);
    return declare(rt, name, (ljs__ftype_t){LJS_TLIST, elem, maxlen});
}

/* Resolve (entity, field) for a host read or write. */
static int locate(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t *slot, int *f)
{
    if (rt == NULL || name == NULL)
        return ljs__error(LJS_EINVAL, "field access: NULL argument");
    *slot = ljs__world_slot(&rt->world, e.id);
    if (*slot < 0)
        return ljs__error(LJS_ENOENT, "entity " LJS_ENTITY_FMT " is not alive", LJS_ENTITY_ARGS(e.id));
    *f = ljs__world_field_find(&rt->world, name);
    if (*f < 0)
        return ljs__error(LJS_ENOENT, "no field named '%s'", name);
    return LJS_OK;
}

static int get_value(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs__value_t *v,
                     ljs_type_t *t)
{
    int64_t slot = -1;
    int f = -1;
    int rc = locate(rt, e, name, &slot, &f);
    if (rc != LJS_OK)
        return rc;
    const ljs__field_t *fd = &rt->world.fields[f];
    if (!fd->present[slot])
        return ljs__error(LJS_ENOENT, "entity " LJS_ENTITY_FMT " has no field '%s'", LJS_ENTITY_ARGS(e.id),
                          name);
    *v = fd->cur[slot];
    *t = fd->type;
    return LJS_OK;
}

int ljs_field_get_number(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, double *out)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_number");
    ljs__value_t v = {0};
    ljs_type_t t = LJS_TNIL;
    int rc = get_value(rt, e, name, &v, &t);
    if (rc == LJS_OK && t != LJS_TNUMBER && t != LJS_TINTEGER && t != LJS_TBOOLEAN)
        return ljs__error(LJS_ETYPE, "field '%s' is a %s, not a number", name, ljs__type_name(t));
    if (rc == LJS_OK && out != NULL)
        *out = t == LJS_TNUMBER ? v.n : (double)v.i;
    return rc;
}

int ljs_field_get_integer(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_integer");
    ljs__value_t v = {0};
    ljs_type_t t = LJS_TNIL;
    int rc = get_value(rt, e, name, &v, &t);
    if (rc != LJS_OK)
        return rc;
    if (t != LJS_TNUMBER && t != LJS_TINTEGER && t != LJS_TBOOLEAN)
        return ljs__error(LJS_ETYPE, "field '%s' is a %s, not an integer", name, ljs__type_name(t));
    if (t == LJS_TNUMBER) {
        if (v.n != floor(v.n) || !(v.n >= -9.2e18 && v.n <= 9.2e18))
            return ljs__error(LJS_ETYPE, "field '%s' holds %g, not an integer", name, v.n);
        int64_t i = (int64_t)v.n;
        v.i = i;
    }
    if (out != NULL)
        *out = v.i;
    return LJS_OK;
}

int ljs_field_get_boolean(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, int *out)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_boolean");
    ljs__value_t v = {0};
    ljs_type_t t = LJS_TNIL;
    int rc = get_value(rt, e, name, &v, &t);
    if (rc == LJS_OK && t != LJS_TBOOLEAN)
        return ljs__error(LJS_ETYPE, "field '%s' is not a boolean", name);
    if (rc == LJS_OK && out != NULL)
        *out = (int)v.i;
    return rc;
}

static int set_value(ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_type_t given, ljs__value_t v)
{
    int64_t slot = -1;
    int f = -1;
    int rc = locate(rt, e, name, &slot, &f);
    if (rc == LJS_OK)
        rc = not_in_frame(rt, "ljs_field_set");
    if (rc != LJS_OK)
        return rc;
    ljs_type_t t = rt->world.fields[f].type;
    if (t == LJS_TENTITY || t == LJS_TSTRING || t == LJS_TLIST)
        return ljs__error(LJS_ETYPE, "field '%s' is a %s (use ljs_field_set_%s)", name, ljs__type_name(t),
                          ljs__type_name(t));
    if (t == LJS_TNUMBER && given == LJS_TINTEGER) {
        double d = (double)v.i;
        v.n = d;
    } else if (t == LJS_TINTEGER && given == LJS_TNUMBER) {
        if (v.n != floor(v.n) || !(v.n >= -9.2e18 && v.n <= 9.2e18))
            return ljs__error(LJS_ETYPE, "field '%s' is an integer; %g is not integral", name, v.n);
        int64_t i = (int64_t)v.n;
        v.i = i;
    } else if (t != given)
        return ljs__error(LJS_ETYPE, "field '%s' is not a %s", name,
                          given == LJS_TBOOLEAN ? "boolean" : "number");
    ljs__world_field_put(&rt->world, (uint32_t)f, (uint32_t)slot, v);
    return LJS_OK;
}

int ljs_field_set_number(ljs_runtime_t *rt, ljs_entity_t e, const char *name, double v)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_number");
    return set_value(rt, e, name, LJS_TNUMBER, (ljs__value_t){.n = v});
}

int ljs_field_set_integer(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int64_t v)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_integer");
    return set_value(rt, e, name, LJS_TINTEGER, (ljs__value_t){.i = v});
}

int ljs_field_set_boolean(ljs_runtime_t *rt, ljs_entity_t e, const char *name, int v)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_boolean");
    return set_value(rt, e, name, LJS_TBOOLEAN, (ljs__value_t){.i = v != 0});
}

/* ---- entity, string and list fields ------------------------------------------ */

/* The committed value of field `name` of `e`, which must be of type `want`. */
static int get_typed(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_type_t want,
                     const ljs__field_t **fd, uint32_t *slot)
{
    int64_t s = -1;
    int f = -1;
    int rc = locate(rt, e, name, &s, &f);
    if (rc != LJS_OK)
        return rc;
    *fd = &rt->world.fields[f];
    if ((*fd)->type != want)
        return ljs__error(LJS_ETYPE, "field '%s' is a %s, not a %s", name, ljs__type_name((*fd)->type),
                          ljs__type_name(want));
    if (!(*fd)->present[s])
        return ljs__error(LJS_ENOENT, "entity " LJS_ENTITY_FMT " has no field '%s'", LJS_ENTITY_ARGS(e.id),
                          name);
    *slot = (uint32_t)s;
    return LJS_OK;
}

int ljs_field_get_entity(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_entity_t *out)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_entity");
    const ljs__field_t *fd = NULL;
    uint32_t slot = 0;
    int rc = get_typed(rt, e, name, LJS_TENTITY, &fd, &slot);
    if (rc == LJS_OK && out != NULL)
        out->id = ljs__world_live_ref(&rt->world, fd->cur[slot].i);
    return rc;
}

int ljs_field_get_string(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, const char **out,
                         size_t *len)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_string");
    const ljs__field_t *fd = NULL;
    uint32_t slot = 0;
    int rc = get_typed(rt, e, name, LJS_TSTRING, &fd, &slot);
    if (rc != LJS_OK)
        return rc;
    size_t n;
    const char *p = ljs__strings_bytes(&rt->world.strings, (uint32_t)fd->cur[slot].i, &n);
    if (out != NULL)
        *out = p;
    if (len != NULL)
        *len = n;
    return LJS_OK;
}

static ljs_value_t elem_value(const ljs__world_t *w, ljs_type_t t, ljs__value_t v)
{
    ljs_value_t r;
    memset(&r, 0, sizeof r);
    r.type = t;
    switch (t) {
    case LJS_TNUMBER:
        r.v.n = v.n;
        break;
    case LJS_TINTEGER:
        r.v.i = v.i;
        break;
    case LJS_TBOOLEAN:
        r.v.b = (int)v.i;
        break;
    case LJS_TSTRING:
        r.v.s.p = ljs__strings_bytes(&w->strings, (uint32_t)v.i, &r.v.s.len);
        break;
    default:
        r.v.e = ljs__world_live_ref(w, v.i);
        break;
    }
    return r;
}

int ljs_field_get_list(const ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_value_t *out,
                       size_t cap, size_t *len)
{
    LJS_CHECK_OWNER(rt, "ljs_field_get_list");
    const ljs__field_t *fd = NULL;
    uint32_t slot = 0;
    if (cap > 0 && out == NULL)
        return ljs__error(LJS_EINVAL, "ljs_field_get_list: NULL out with cap > 0");
    int rc = get_typed(rt, e, name, LJS_TLIST, &fd, &slot);
    if (rc != LJS_OK)
        return rc;
    size_t n = (size_t)fd->cur[slot].i;
    const ljs__value_t *els = fd->lcur + (size_t)slot * fd->maxlen;
    for (size_t k = 0; k < n && k < cap; k++)
        out[k] = elem_value(&rt->world, fd->elem, els[k]);
    if (len != NULL)
        *len = n;
    return LJS_OK;
}

/* Locate a field of type `want` for a host write. */
static int set_typed(ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_type_t want, int *f,
                     uint32_t *slot)
{
    int64_t s = -1;
    int rc = locate(rt, e, name, &s, f);
    if (rc == LJS_OK)
        rc = not_in_frame(rt, "ljs_field_set");
    if (rc != LJS_OK)
        return rc;
    if (rt->world.fields[*f].type != want)
        return ljs__error(LJS_ETYPE, "field '%s' is a %s, not a %s", name,
                          ljs__type_name(rt->world.fields[*f].type), ljs__type_name(want));
    *slot = (uint32_t)s;
    return LJS_OK;
}

int ljs_field_set_entity(ljs_runtime_t *rt, ljs_entity_t e, const char *name, ljs_entity_t target)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_entity");
    int f = -1;
    uint32_t slot = 0;
    int rc = set_typed(rt, e, name, LJS_TENTITY, &f, &slot);
    if (rc != LJS_OK)
        return rc;
    if (target.id != 0 && ljs__world_slot(&rt->world, target.id) < 0)
        return ljs__error(LJS_ENOENT, "field '%s': target entity " LJS_ENTITY_FMT " is not alive", name,
                          LJS_ENTITY_ARGS(target.id));
    ljs__world_field_put(&rt->world, (uint32_t)f, slot, (ljs__value_t){.i = (int64_t)target.id});
    return LJS_OK;
}

int ljs_field_set_string(ljs_runtime_t *rt, ljs_entity_t e, const char *name, const char *s, size_t len)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_string");
    int f = -1;
    uint32_t slot = 0;
    if (s == NULL && len > 0)
        return ljs__error(LJS_EINVAL, "ljs_field_set_string: NULL string");
    if (len > LJS_STRING_MAX)
        return ljs__error(LJS_EINVAL, "field '%s': a string of %zu bytes (at most LJS_STRING_MAX = %d)",
                          name != NULL ? name : "?", len, LJS_STRING_MAX);
    int rc = set_typed(rt, e, name, LJS_TSTRING, &f, &slot);
    if (rc != LJS_OK)
        return rc;
    int64_t id = ljs__strings_intern(&rt->world.strings, s != NULL ? s : "", len);
    if (id < 0)
        return ljs__error(LJS_ENOMEM, "field '%s': out of memory interning a string", name);
    ljs__world_field_put(&rt->world, (uint32_t)f, slot, (ljs__value_t){.i = id});
    return LJS_OK;
}

/* One host value as a list element of type t into *out; an error code. */
static int elem_from(ljs_runtime_t *rt, const char *name, size_t k, ljs_type_t t, const ljs_value_t *v,
                     ljs__value_t *out)
{
    int ok = 1;
    switch (t) {
    case LJS_TNUMBER:
        ok = v->type == LJS_TNUMBER || v->type == LJS_TINTEGER;
        out->n = v->type == LJS_TNUMBER ? v->v.n : (double)v->v.i;
        break;
    case LJS_TINTEGER:
        ok = v->type == LJS_TINTEGER ||
             (v->type == LJS_TNUMBER && v->v.n == floor(v->v.n) && v->v.n >= -9.2e18 && v->v.n <= 9.2e18);
        out->i = v->type == LJS_TINTEGER ? v->v.i : ok ? (int64_t)v->v.n : 0;
        break;
    case LJS_TBOOLEAN:
        ok = v->type == LJS_TBOOLEAN;
        out->i = v->v.b != 0;
        break;
    case LJS_TSTRING: {
        ok = v->type == LJS_TSTRING && (v->v.s.p != NULL || v->v.s.len == 0);
        if (ok && v->v.s.len > LJS_STRING_MAX)
            return ljs__error(LJS_EINVAL, "field '%s': element %zu is a string of %zu bytes (at most %d)",
                              name, k + 1, v->v.s.len, LJS_STRING_MAX);
        int64_t id = ok ? ljs__strings_intern(&rt->world.strings, v->v.s.len ? v->v.s.p : "", v->v.s.len) : 0;
        if (id < 0)
            return ljs__error(LJS_ENOMEM, "field '%s': out of memory interning a string", name);
        out->i = id;
        break;
    }
    default:
        ok = v->type == LJS_TENTITY && (v->v.e == 0 || ljs__world_slot(&rt->world, v->v.e) >= 0);
        out->i = (int64_t)v->v.e;
        if (!ok && v->type == LJS_TENTITY)
            return ljs__error(LJS_ENOENT, "field '%s': element %zu, entity " LJS_ENTITY_FMT " is not alive",
                              name, k + 1, LJS_ENTITY_ARGS(v->v.e));
        break;
    }
    if (!ok)
        return ljs__error(LJS_ETYPE, "field '%s' is a list of %s; element %zu has another type", name,
                          ljs__type_name(t), k + 1);
    return LJS_OK;
}

int ljs_field_set_list(ljs_runtime_t *rt, ljs_entity_t e, const char *name, const ljs_value_t *v, size_t n)
{
    LJS_CHECK_OWNER(rt, "ljs_field_set_list");
    int f = -1;
    uint32_t slot = 0;
    if (n > 0 && v == NULL)
        return ljs__error(LJS_EINVAL, "ljs_field_set_list: NULL values");
    int rc = set_typed(rt, e, name, LJS_TLIST, &f, &slot);
    if (rc != LJS_OK)
        return rc;
    const ljs__field_t *fd = &rt->world.fields[f];
    if (n > fd->maxlen)
        return ljs__error(LJS_EINVAL, "field '%s' holds at most %u elements (got %zu)", name,
                          (unsigned)fd->maxlen, n);
    ljs__value_t els[LJS_LIST_MAX];
    for (size_t k = 0; k < n; k++) {
        rc = elem_from(rt, name, k, fd->elem, &v[k], &els[k]);
        if (rc != LJS_OK)
            return rc;
    }
    ljs__world_list_put(&rt->world, (uint32_t)f, slot, els, (uint32_t)n);
    return LJS_OK;
}

uint64_t ljs_world_digest(const ljs_runtime_t *rt)
{
    if (ljs__owner_check(rt, "ljs_world_digest") != LJS_OK)
        return 0;
    return rt != NULL ? ljs__world_digest(&rt->world) : 0;
}
