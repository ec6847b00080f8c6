/* error.c - error codes, their names and texts, and the per-thread detailed
 * message of the last failure. One table (LJS_ERR_MAP in ljs.h) generates the
 * enum and both lookups, so they cannot drift apart. */
#include "runtime/error.h"

#include <ljs.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *ljs_strerror(int err)
{
    switch (err) {
#define LJS__ERR_TEXT(name, value, msg) \
    case value:                         \
        return msg;
        LJS_ERR_MAP(LJS__ERR_TEXT)
#undef LJS__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *ljs_errname(int err)
{
    switch (err) {
#define LJS__ERR_NAME(name, value, msg) \
    case value:                         \
        return "LJS_" #name;
        LJS_ERR_MAP(LJS__ERR_NAME)
#undef LJS__ERR_NAME
    default:
        return "LJS_E?";
    }
}

const char *ljs_last_error(void)
{
    return last_error;
}

int ljs__error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return err;
}

unsigned long ljs_version(void)
{
    return LJS_VERSION_NUM;
}
