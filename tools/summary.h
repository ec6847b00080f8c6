/* summary.h - ljs-run's end-of-run summary and --report file. */
#ifndef LJS_TOOLS_SUMMARY_H
#define LJS_TOOLS_SUMMARY_H

#include <ljs.h>
#include <stdio.h>

/* Print where the time and memory went: frame and phase times, workers,
 * the scripts that took the most time, memory, GC, cache and queries.
 * Thread: owner, between frames. */
void summary_print(ljs_runtime_t *rt, double seconds, FILE *out);

/* Check that the runtime wrote the --report file (through LJS_REPORT, at
 * ljs_runtime_destroy). Returns 0, or -1 with a message on stderr. */
int summary_check_report(const char *path);

#endif
