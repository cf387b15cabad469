/* Command-line options: the input split at NUL bytes into argv for the
 * flag parser and the readers behind `muon train`, `muon compare`, and
 * `muon ortho` with the list flags of `muon bench` (byte 0 picks which). Messages go to stderr, which the runner
 * closes; nothing may exit. --resume is left out: it reads a checkpoint,
 * which fuzz_ckpt covers. */
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/train_flags.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

/* The flags cli_ortho_config_from_args reads, as `muon ortho` declares
 * them, and the lists the benches read (--threads, --widths, --shape). */
static const cli_flag ortho_flags[] = {
    {"method", "M", CLI_VALUE, ""},   {"coeffs", "C", CLI_VALUE, ""},
    {"steps", "Q", CLI_VALUE, ""},    {"aol", NULL, CLI_SWITCH, ""},
    {"precision", "P", CLI_VALUE, ""}, {"restarts", "LIST", CLI_VALUE, ""},
    {"threads", "N", CLI_VALUE | CLI_REPEAT, ""}, {"widths", "W", CLI_VALUE | CLI_REPEAT, ""},
    {"shape", "RxC", CLI_VALUE | CLI_REPEAT, ""},
};

static void parse_rest(cli_args *a, int mode)
{
    if (mode == 2) {
        muon_ortho_config oc;
        const char **items;
        int n;
        if (cli_ortho_config_from_args(a, &oc) == 0 &&
            muon_ortho_config_validate(&oc) != MUON_OK)
            fz_fail("--method/--coeffs/--steps accepted an invalid configuration");
        if (cli_get_list(a, "threads", &items, &n) == 0)
            for (int i = 0; i < n; i++)
                if (!items[i][0] || strchr(items[i], ','))
                    fz_fail("cli_get_list returned an empty or unsplit item");
        static const long def[] = {256, 512};
        long *v;
        int *t;
        if (bench_long_list(a, "widths", 1, 16384, def, 2, &v, &n) == 0) {
            for (int i = 0; i < n; i++)
                if (v[i] < 1 || v[i] > 16384)
                    fz_fail("bench_long_list returned a value out of its range");
            free(v);
        }
        if (bench_thread_list(a, &t, &n) == 0)
            free(t);
        if (cli_get_list(a, "shape", &items, &n) == 0)
            for (int i = 0; i < n; i++) {
                long r, c;
                if (bench_parse_shape(a, "shape", items[i], &r, &c) == 0 &&
                    (r < 1 || c < 1 || r * c > (1L << 31)))
                    fz_fail("bench_parse_shape accepted an impossible shape");
            }
        return;
    }
    if (cli_count(a, "resume"))
        return;
    train_config c;
    const char *resume;
    if (cli_train_config_from_args(a, mode ? TRAIN_FLAGS_COMPARE : TRAIN_FLAGS_TRAIN, &c,
                                   &resume) == 0) {
        char err[256];
        if (train_config_validate(&c, err, sizeof err) != 0)
            fz_fail("the flags gave a configuration the trainer refuses");
    }
    const char **items;
    int n;
    if (mode == 1)
        cli_get_list(a, "lr-grid", &items, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++, size--;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    static char prog[] = "muon";
    char *argv[MAX_ARGS + 1] = {prog};
    int argc = 1;
    for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
        argv[argc++] = buf + i;
        i += strlen(buf + i);
    }
    argv[argc] = NULL;
    static const char *const names[] = {"muon train", "muon compare", "muon ortho"};
    const cli_flag *table = mode == 0   ? cli_train_flag_table
                            : mode == 1 ? cli_compare_flag_table
                                        : ortho_flags;
    int count = mode == 0   ? cli_train_flag_count
                : mode == 1 ? cli_compare_flag_count
                            : (int)(sizeof ortho_flags / sizeof ortho_flags[0]);
    cli_args a;
    int rc = cli_args_parse(&a, names[mode], table, count, 0, argc, argv);
    if (rc != 0 && rc != 2)
        fz_fail("cli_args_parse returned neither 0 nor 2");
    if (rc == 0) {
        if (!a.help)
            parse_rest(&a, mode);
        cli_args_free(&a);
    }
    free(buf);
    return 0;
}
