/* bench_burn.c - CPU-burning processes beside a bench, for its "under
 * contention" figures: each is a forked child spinning until killed, so
 * the workers compete with other processes as on a loaded machine. */
#include "bench/bench.h"

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_burners_start(bench_burners_t *b, int n)
{
    b->n = 0;
    for (int i = 0; i < n && i < BENCH_MAX_BURNERS; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("bench: fork");
            bench_burners_stop(b);
            return -1;
        }
        if (pid == 0) { /* the child only spins: nothing async-signal-unsafe after fork */
            volatile unsigned long x = 0;
            for (;;)
                x++;
        }
        b->pid[b->n++] = (int)pid;
    }
    return 0;
}

void bench_burners_stop(bench_burners_t *b)
{
    for (int i = 0; i < b->n; i++)
        kill((pid_t)b->pid[i], SIGKILL);
    for (int i = 0; i < b->n; i++)
        waitpid((pid_t)b->pid[i], NULL, 0);
    b->n = 0;
}
