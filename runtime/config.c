/* config.c - built-in defaults and LJS_* environment overrides.
 *
 * Every knob comes from LJS_CONFIG_MAP in ljs.h, so the defaults, the
 * variable names, the ranges and the validation are written once. A bad
 * value is an error naming the variable and its accepted range: nothing is
 * silently clamped or ignored. A number is digits only: " 64", "64 " and
 * "+64" are refused (a value a shell script mangled is a bug to report, not
 * to guess at). An LJS_* name that is no knob is reported by
 * ljs__config_unknown_env, with the closest knob name. */
#include "runtime/config.h"

#include "runtime/error.h"

#include <errno.h>
#include <libgen.h>
#include <ljs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse a decimal integer made of digits only (strtoull alone would take
 * leading spaces, '+' and '-'); returns 0 on success. */
static int parse_u64(const char *s, unsigned long long *out)
{
    char *end = NULL;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int bad_value(ljs_config_t *cfg, const char *env, const char *val, const char *why,
                     unsigned long long lo, unsigned long long hi)
{
    snprintf(cfg->error, sizeof cfg->error, "%s='%s': %s (accepted: %llu..%llu)", env, val, why, lo, hi);
    return ljs__error(LJS_EINVAL, "%s", cfg->error);
}

/* Apply one variable if set. Returns LJS_OK or LJS_EINVAL. */
static int env_u32(ljs_config_t *cfg, uint32_t *field, const char *env, unsigned long long lo,
                   unsigned long long hi)
{
    const char *val = getenv(env);
    unsigned long long v;
    if (val == NULL)
        return LJS_OK;
    if (parse_u64(val, &v) != 0)
        return bad_value(cfg, env, val, "not a non-negative integer (digits only, no spaces or sign)", lo,
                         hi);
    if (v < lo || v > hi)
        return bad_value(cfg, env, val, "out of range", lo, hi);
    *field = (uint32_t)v;
    return LJS_OK;
}

/* Apply a string variable if set; too long is an error, not a truncation. */
static int env_str(ljs_config_t *cfg, char *field, size_t size, const char *env)
{
    const char *val = getenv(env);
    if (val == NULL)
        return LJS_OK;
    if (strlen(val) >= size) {
        snprintf(cfg->error, sizeof cfg->error, "%s: longer than %zu characters", env, size - 1);
        return ljs__error(LJS_EINVAL, "%s", cfg->error);
    }
    memcpy(field, val, strlen(val) + 1);
    return LJS_OK;
}

int ljs_config_init(ljs_config_t *cfg)
{
    if (cfg == NULL)
        return ljs__error(LJS_EINVAL, "ljs_config_init: cfg is NULL");
    memset(cfg, 0, sizeof *cfg);
#define LJS__CONFIG_DEFAULT(type, field, env, def, lo, hi, help) cfg->field = (type)(def);
    LJS_CONFIG_MAP(LJS__CONFIG_DEFAULT)
#undef LJS__CONFIG_DEFAULT
#define LJS__CONFIG_STR_DEFAULT(field, env, def, maxlen, help) \
    snprintf(cfg->field, sizeof cfg->field, "%s", def);
    LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_DEFAULT)
#undef LJS__CONFIG_STR_DEFAULT
    int rc = LJS_OK;
    /* Keep going after a bad variable so cfg is fully initialised, but report
     * the first one: it is the one the user will fix first. */
#define LJS__CONFIG_ENV(type, field, env, def, lo, hi, help) \
    if (rc == LJS_OK)                                        \
        rc = env_u32(cfg, &cfg->field, env, lo, hi);
    LJS_CONFIG_MAP(LJS__CONFIG_ENV)
#undef LJS__CONFIG_ENV
#define LJS__CONFIG_STR_ENV(field, env, def, maxlen, help) \
    if (rc == LJS_OK)                                      \
        rc = env_str(cfg, cfg->field, sizeof cfg->field, env);
    LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_ENV)
#undef LJS__CONFIG_STR_ENV
    return rc;
}

static int in_range(unsigned long long v, unsigned long long lo, unsigned long long hi)
{
    return v >= lo && v <= hi;
}

/* An output file (LJS_TRACE, LJS_REPORT) is written at exit: a directory
 * that cannot take it must fail now, not after an hour's run. */
static int check_output(const char *env, const char *path)
{
    char dir[512];
    if (path[0] == '\0')
        return LJS_OK;
    snprintf(dir, sizeof dir, "%s", path);
    const char *d = dirname(dir);
    if (access(d, W_OK | X_OK) != 0)
        return ljs__error(LJS_EINVAL, "%s=%s: cannot write into directory %s (%s)", env, path, d,
                          strerror(errno));
    return LJS_OK;
}

int ljs_config_validate(const ljs_config_t *cfg)
{
    if (cfg == NULL)
        return ljs__error(LJS_EINVAL, "config is NULL");
    if (cfg->error[0] != '\0')
        return ljs__error(LJS_EINVAL, "%s", cfg->error);
#define LJS__CONFIG_CHECK(type, field, env, def, lo, hi, help)                                            \
    if (!in_range(cfg->field, lo, hi) && !((def) == 0 && cfg->field == 0))                                \
        return ljs__error(LJS_EINVAL, "config.%s=%llu (%s): out of range (accepted: %llu..%llu)", #field, \
                          (unsigned long long)cfg->field, env, (unsigned long long)(lo),                  \
                          (unsigned long long)(hi));
    LJS_CONFIG_MAP(LJS__CONFIG_CHECK)
#undef LJS__CONFIG_CHECK
#define LJS__CONFIG_STR_CHECK(field, env, def, maxlen, help)                                             \
    if (memchr(cfg->field, 0, sizeof cfg->field) == NULL)                                                \
        return ljs__error(LJS_EINVAL, "config.%s (%s): not NUL-terminated within %d bytes", #field, env, \
                          (int)sizeof cfg->field);
    LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_CHECK)
#undef LJS__CONFIG_STR_CHECK
    if (strcmp(cfg->gc_mode, "managed") != 0 && strcmp(cfg->gc_mode, "generational") != 0 &&
        strcmp(cfg->gc_mode, "incremental") != 0)
        return ljs__error(LJS_EINVAL,
                          "LJS_GC_MODE='%.16s': not a GC mode (accepted: managed, generational, incremental)",
                          cfg->gc_mode);
    int rc = check_output("LJS_TRACE", cfg->trace);
    return rc == LJS_OK ? check_output("LJS_REPORT", cfg->report) : rc;
}

static const char *source_u32(uint32_t v, uint32_t def, const char *env, unsigned long long lo,
                              unsigned long long hi)
{
    const char *val = getenv(env);
    unsigned long long x;
    if (val != NULL && parse_u64(val, &x) == 0 && x >= lo && x <= hi && x == v)
        return "environment";
    return val == NULL && v == def ? "default" : "host";
}

static const char *source_str(const char *v, const char *def, const char *env)
{
    const char *val = getenv(env);
    if (val != NULL && !strcmp(val, v))
        return "environment";
    return val == NULL && !strcmp(v, def) ? "default" : "host";
}

/* Derived rather than recorded, so a config the host filled by hand (no
 * ljs_config_init) is still described right. */
const char *ljs_config_source(const ljs_config_t *cfg, const char *env)
{
    if (cfg == NULL || env == NULL)
        return NULL;
#define LJS__CONFIG_SOURCE(type, field, name, def, lo, hi, help) \
    if (!strcmp(env, name))                                      \
        return source_u32(cfg->field, def, name, lo, hi);
    LJS_CONFIG_MAP(LJS__CONFIG_SOURCE)
#undef LJS__CONFIG_SOURCE
#define LJS__CONFIG_STR_SOURCE(field, name, def, maxlen, help) \
    if (!strcmp(env, name))                                    \
        return source_str(cfg->field, def, name);
    LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_SOURCE)
#undef LJS__CONFIG_STR_SOURCE
    return NULL;
}

/* ========================================================================
 * Unknown LJS_* variables
 * ======================================================================== */

extern char **environ;

/* LJS_* names read by the project's build and tools, not by the library. */
static const char *const not_knobs[] = {"LJS_SKIP_DEPS"};

static const char *const knob_names[] = {
#define LJS__CONFIG_NAME(type, field, env, def, lo, hi, help) env,
    LJS_CONFIG_MAP(LJS__CONFIG_NAME)
#undef LJS__CONFIG_NAME
#define LJS__CONFIG_STR_NAME(field, env, def, maxlen, help) env,
        LJS_CONFIG_STR_MAP(LJS__CONFIG_STR_NAME)
#undef LJS__CONFIG_STR_NAME
};

/* Levenshtein distance between a[0..n) and b, capped at 64 characters per
 * name (knob names are shorter). */
static size_t edit_distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b), row[65];
    if (n > 64 || m > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

static int is_name(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && !memcmp(a, b, n);
}

void ljs__config_unknown_env(ljs__config_unknown_fn fn, void *ud)
{
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *v = *e, *eq = strchr(v, '=');
        if (strncmp(v, "LJS_", 4) != 0 || eq == NULL)
            continue;
        size_t n = (size_t)(eq - v);
        int known = 0;
        for (size_t k = 0; k < sizeof knob_names / sizeof knob_names[0] && !known; k++)
            known = is_name(v, n, knob_names[k]);
        for (size_t k = 0; k < sizeof not_knobs / sizeof not_knobs[0] && !known; k++)
            known = is_name(v, n, not_knobs[k]);
        if (known)
            continue;
        /* Closest knob: at most a third of the name changed counts as a
         * typo (LJS_WORKER, LJS_STATE_MEM, LJS_GCMODE); otherwise no guess. */
        const char *closest = NULL;
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < sizeof knob_names / sizeof knob_names[0]; k++) {
            size_t d = edit_distance(v, n, knob_names[k]);
            if (d < best) {
                best = d;
                closest = knob_names[k];
            }
        }
        fn(ud, v, n, best <= (n - 4) / 3 + 1 ? closest : NULL);
    }
}
