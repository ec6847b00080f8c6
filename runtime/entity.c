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

int ljs_field_declare(ljs_runtime_t *rt, const char *name, ljs_type_t type)
{
    LJS_CHECK_OWNER(rt, "ljs_field_declare");
    if (rt == NULL || name == NULL || name[0] == '\0' ||
        (type != LJS_TNUMBER && type != LJS_TINTEGER && type != LJS_TBOOLEAN))
        return ljs__error(LJS_EINVAL, "ljs_field_declare: bad name or type");
    int rc = not_in_frame(rt, "ljs_field_declare");
    if (rc != LJS_OK)
        return rc;
    int f = ljs__world_field_declare(&rt->world, name, type);
    if (f == LJS_ETYPE)
        return ljs__error(LJS_ETYPE, "field '%s' is already declared with another type", name);
    return f < 0 ? ljs__error(f, "cannot declare field '%s'", name) : LJS_OK;
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

uint64_t ljs_world_digest(const ljs_runtime_t *rt)
{
    if (ljs__owner_check(rt, "ljs_world_digest") != LJS_OK)
        return 0;
    return rt != NULL ? ljs__world_digest(&rt->world) : 0;
}
