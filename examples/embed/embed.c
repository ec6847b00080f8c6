/* embed.c - a small complete ljs host (built and run by the tests): scripts
 * call the engine (physics.raycast in parallel, audio.play deferred to this
 * thread) and send it events. */
#include <ljs.h>
#include <stdio.h>

static int sounds, turned;

/* Parallel: runs on any worker at once, so it only reads (a 16x16 grid of
 * walls around the origin). Returns how far the ray goes, in cells. */
static int raycast(ljs_call_t *c, void *ud)
{
    const char(*grid)[17] = ud;
    double dx, dy, x = 8.0, y = 8.0, d = 0.0;
    if (ljs_arg_number(c, 1, &dx) != LJS_OK || ljs_arg_number(c, 2, &dy) != LJS_OK)
        return LJS_ETYPE; /* "physics.raycast: argument 2 must be a number", raised at the script's line */
    while (grid[(int)y][(int)x] != '#' && d < 32.0)
        x += dx * 0.25, y += dy * 0.25, d += 0.25;
    return ljs_ret_number(c, d);
}

/* Deferred: not thread-safe, so ljs queues the calls and runs them here, on the
 * thread that runs ljs_frame, in the same order for any worker count. */
static int play(ljs_call_t *c, void *ud)
{
    (void)ud;
    const char *name;
    size_t len;
    if (ljs_arg_string(c, 1, &name, &len) != LJS_OK)
        return LJS_ETYPE;
    sounds++; /* a real engine would start the sound here */
    return LJS_OK;
}

static void on_event(void *ud, const ljs_host_event_t *ev)
{
    (void)ud;
    turned += ev->payload.type == LJS_TTABLE; /* send(0, "turned", { turns = n }) */
}

static void print_line(void *ud, const ljs_log_line_t *line)
{
    (void)ud;
    fprintf(stderr, "[%s] %s\n", line->script, line->text);
}

int main(int argc, char **argv)
{
    static const char grid[16][17] = {
        "################", "#..............#", "#..............#", "#..............#",
        "#..............#", "#..............#", "#.....####.....#", "#..............#",
        "#..............#", "#..............#", "#..............#", "#..............#",
        "#..............#", "#..............#", "#..............#", "################"};
    const char *script = argc > 1 ? argv[1] : "examples/embed/spin.lua";
    ljs_config_t cfg;
    ljs_runtime_t *rt;
    ljs_script_t spin;
    if (ljs_config_init(&cfg) != LJS_OK || ljs_runtime_create(&cfg, &rt) != LJS_OK) {
        fprintf(stderr, "ljs: %s\n", ljs_last_error()); /* e.g. a bad LJS_* variable */
        return 1;
    }
    ljs_host_def_t fns[] = {
        {"physics.raycast", LJS_PARALLEL, raycast, (void *)grid, "nn"},
        {"audio.play", LJS_DEFERRED, play, NULL, "sn?"},
    };
    for (int i = 0; i < 2; i++)
        ljs_host_register(rt, &fns[i]); /* before or after create; every script sees them */
    ljs_host_events_set(rt, on_event, NULL);
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
    double angle, sight;
    ljs_field_get_number(rt, e[999], "angle", &angle);
    ljs_field_get_number(rt, e[999], "sight", &sight);
    printf("entity 999 turned %.3f rad in 60 frames and sees %.2f cells; %d sounds, %d events\n", angle,
           sight, sounds, turned);
    ljs_runtime_destroy(rt);
    /* Speeds from 6.29 rad/s up make one full turn in a second. */
    return angle > 9.98 && angle < 9.999 && sight > 0.0 && sounds == 371 && turned == 371 ? 0 : 1;
}
