/* The trainer's watchdog under --dist (train/par.h): a thread that ends
 * this rank when the training loop has not beaten for too long. A rank
 * blocked in a collective whose peer is stopped or cut off would wait for
 * ever; exiting makes mpirun end the whole job, naming this rank. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "train/par.h"

static pthread_t thread;
static int running;
static atomic_int stop;
static _Atomic double last_beat;
static double limit_s;
static int my_rank;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *watch(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        usleep(100000);
        double quiet = now_s() - atomic_load(&last_beat);
        if (quiet > limit_s && !atomic_load(&stop)) {
            fprintf(stderr,
                    "muon train: rank %d: no progress for %.0f s (--dist-timeout): another rank "
                    "or the network stopped answering; ending this rank\n",
                    my_rank, quiet);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

void train_par_watchdog_start(double seconds)
{
    if (seconds <= 0 || running)
        return;
    limit_s = seconds;
    my_rank = train_par_rank();
    atomic_store(&last_beat, now_s());
    atomic_store(&stop, 0);
    running = pthread_create(&thread, NULL, watch, NULL) == 0;
}

void train_par_heartbeat(void)
{
    atomic_store(&last_beat, now_s());
}

void train_par_watchdog_stop(void)
{
    if (!running)
        return;
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    running = 0;
}
