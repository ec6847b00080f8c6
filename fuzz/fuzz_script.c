/* fuzz_script.c - a script loaded from arbitrary bytes (as source), through
 * the public API only.
 *
 * The input is written to fz.lua in a private temporary directory (up to a
 * line "--[lib]", after which the rest becomes lib.lua, so require is
 * reached too), and loaded into a fresh runtime with 1 worker, a small
 * memory limit, an instruction budget and a CPU timeout. If the load
 * succeeds, an entity gets the script and two frames run, the second after
 * the host sent it a "hit" event. The process must live, every call must
 * return one of its documented codes, and the runtime must come apart
 * cleanly (ASan+UBSan, LeakSanitizer). */
#include "fuzz/fuzz.h"

#include <ljs.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char main_path[128], lib_path[128];

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

static void on_line(void *ud, const ljs_log_line_t *line)
{
    size_t *chars = ud;
    FUZZ_CHECK(line->text != NULL && line->script != NULL);
    *chars += strlen(line->text) + strlen(line->script); /* touch every byte */
}

static void setup(void)
{
    fuzz_tmpdir(dir, sizeof dir);
    snprintf(main_path, sizeof main_path, "%s/fz.lua", dir);
    snprintf(lib_path, sizeof lib_path, "%s/lib.lua", dir);
}

static void cleanup(void)
{
    unlink(main_path);
    unlink(lib_path);
    rmdir(dir);
}

int ljs_fuzz_script(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        atexit(cleanup);
        ready = 1;
    }
    static const char mark[] = "\n--[lib]\n";
    size_t split = size;
    for (size_t i = 0; i + sizeof mark - 1 <= size; i++)
        if (memcmp(data + i, mark, sizeof mark - 1) == 0) {
            split = i;
            break;
        }
    write_file(main_path, data, split);
    if (split < size)
        write_file(lib_path, data + split + sizeof mark - 1, size - split - (sizeof mark - 1));
    else
        unlink(lib_path);

    ljs_config_t cfg;
    FUZZ_CHECK(ljs_config_init(&cfg) == LJS_OK);
    cfg.workers = 1;
    cfg.state_mem_mb = 8;
    cfg.script_budget = 2000000;
    cfg.script_timeout_ms = 200;
    cfg.watch = 0;
    cfg.console_lines = 64;
    ljs_runtime_t *rt;
    FUZZ_CHECK(ljs_runtime_create(&cfg, &rt) == LJS_OK);
    ljs_script_t s;
    size_t chars = 0;
    int rc = ljs_script_load(rt, main_path, &s);
    FUZZ_CHECK(rc == LJS_OK || rc == LJS_ESCRIPT || rc == LJS_ETYPE || rc == LJS_ENOMEM);
    if (rc != LJS_OK)
        FUZZ_CHECK(ljs_last_error() != NULL && ljs_last_error()[0] != '\0');
    if (rc == LJS_OK) {
        ljs_entity_t e;
        FUZZ_CHECK(ljs_entity_create(rt, &e) == LJS_OK);
        FUZZ_CHECK(ljs_script_attach(rt, e, s) == LJS_OK);
        rc = ljs_frame(rt, 1.0 / 60.0);
        FUZZ_CHECK(rc == LJS_OK || rc == LJS_ENOMEM);
        ljs_console_drain(rt, on_line, &chars);
        ljs_kv_t kv = {"damage", LJS_TINTEGER, {.i = 5}};
        rc = ljs_send(rt, e, "hit", &kv, 1);
        FUZZ_CHECK(rc == LJS_OK || rc == LJS_ENOMEM);
        rc = ljs_frame(rt, 1.0 / 60.0);
        FUZZ_CHECK(rc == LJS_OK || rc == LJS_ENOMEM);
    }
    ljs_console_drain(rt, on_line, &chars);
    ljs_runtime_destroy(rt);
    return 0;
}

LJS_FUZZ_MAIN(ljs_fuzz_script)
