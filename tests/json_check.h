/* json_check.h - a strict JSON syntax checker for the tests (RFC 8259
 * grammar, no extensions), so report and trace files are proven to parse
 * without depending on an outside tool. */
#ifndef LJS_TESTS_JSON_CHECK_H
#define LJS_TESTS_JSON_CHECK_H

#include <ctype.h>
#include <string.h>

typedef struct json_cur_s {
    const char *p;
    int depth;
} json_cur_t;

static int json_value(json_cur_t *c);

static void json_ws(json_cur_t *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
        c->p++;
}

static int json_string(json_cur_t *c)
{
    if (*c->p++ != '"')
        return 0;
    for (;;) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            return 1;
        if (ch < 0x20)
            return 0; /* includes the terminating NUL */
        if (ch != '\\')
            continue;
        ch = (unsigned char)*c->p++;
        if (ch == 'u') {
            for (int i = 0; i < 4; i++)
                if (!isxdigit((unsigned char)*c->p++))
                    return 0;
        } else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
            return 0;
        }
    }
}

static int json_digits(json_cur_t *c)
{
    if (!isdigit((unsigned char)*c->p))
        return 0;
    while (isdigit((unsigned char)*c->p))
        c->p++;
    return 1;
}

static int json_number(json_cur_t *c)
{
    if (*c->p == '-')
        c->p++;
    if (*c->p == '0')
        c->p++;
    else if (!json_digits(c))
        return 0;
    if (*c->p == '.') {
        c->p++;
        if (!json_digits(c))
            return 0;
    }
    if (*c->p == 'e' || *c->p == 'E') {
        c->p++;
        if (*c->p == '+' || *c->p == '-')
            c->p++;
        if (!json_digits(c))
            return 0;
    }
    return 1;
}

/* Object (close '}') or array (close ']'): comma-separated members. */
static int json_members(json_cur_t *c, char close)
{
    c->p++;
    json_ws(c);
    if (*c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        json_ws(c);
        if (close == '}') {
            if (!json_string(c))
                return 0;
            json_ws(c);
            if (*c->p++ != ':')
                return 0;
        }
        if (!json_value(c))
            return 0;
        json_ws(c);
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        return *c->p++ == close;
    }
}

static int json_literal(json_cur_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int json_value(json_cur_t *c)
{
    int ok;
    json_ws(c);
    if (++c->depth > 64)
        return 0;
    switch (*c->p) {
    case '{':
        ok = json_members(c, '}');
        break;
    case '[':
        ok = json_members(c, ']');
        break;
    case '"':
        ok = json_string(c);
        break;
    case 't':
        ok = json_literal(c, "true");
        break;
    case 'f':
        ok = json_literal(c, "false");
        break;
    case 'n':
        ok = json_literal(c, "null");
        break;
    default:
        ok = json_number(c);
    }
    c->depth--;
    return ok;
}

/* 1 if `text` is exactly one JSON value (surrounding whitespace allowed);
 * otherwise 0 and *where is the offset of the first bad byte. */
static inline int json_valid(const char *text, size_t *where)
{
    json_cur_t c = {text, 0};
    int ok = json_value(&c);
    json_ws(&c);
    ok = ok && *c.p == '\0';
    if (where)
        *where = (size_t)(c.p - text);
    return ok;
}

#endif
