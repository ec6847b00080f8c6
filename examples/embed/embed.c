/* embed.c - the smallest complete ljs host (built and run by the tests). */
#include <ljs.h>
#include <stdio.h>

static void print_line(void *ud, const ljs_log_line_t *line)
{
    (void)ud;
    fprintf(stderr, "[%s] %s\n", line->script, line->text);
}

int main(int argc, char **argv)
{
    const char *script = argc > 1 ? argv[1] : "examples/embed/spin.lua";
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t spin;
    if (ljs_config_init(&cfg) != LJS_OK || ljs_runtime_create(&cfg, &rt) != LJS_OK) {
        fprintf(stderr, "ljs: %s\n", ljs_last_error()); /* e.g. a bad LJS_* variable */
        return 1;
    }
    if (ljs_script_load(rt, script, &spin) != LJS_OK) {
        fprintf(stderr, "ljs: %s\n", ljs_last_error()); /* file:line of a syntax error */
        ljs_runtime_destroy(rt);
        return 1;
    }
    ljs_entity_t e[1000];
    for (int i = 0; i < 1000; i++) {
        ljs_entity_create(rt, &e[i]);
        ljs_script_attach(rt, e[i], spin); /* fields get the script's defaults */
        ljs_field_set_number(rt, e[i], "speed", i * 0.01);
    }
    for (int frame = 0; frame < 60; frame++) {
        ljs_frame(rt, 1.0 / 60);                 /* all workers; this thread is worker 0 */
        ljs_console_drain(rt, print_line, NULL); /* script errors and log() */
    }
    double angle;
    ljs_field_get_number(rt, e[999], "angle", &angle);
    printf("entity 999 turned %.3f rad in 60 frames\n", angle);
    ljs_runtime_destroy(rt);
    return angle > 9.98 && angle < 9.999 ? 0 : 1;
}
