/* `muon ckpt-diff A B`: the largest absolute difference between the
 * parameters of two checkpoints of the same model. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/train_flags.h"
#include "train/train.h"

int cli_ckpt_diff(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon ckpt-diff", NULL, 0, 2, argc, argv);
    if (rc)
        return rc;
    if (a.help || a.npos != 2) {
        FILE *f = a.help ? stdout : stderr;
        fprintf(f, "usage: muon ckpt-diff A.bin B.bin\n"
                   "Prints the largest absolute difference between the parameters of two\n"
                   "checkpoints of the same model (0 means bit-identical values).\n");
        rc = a.help ? 0 : 2;
        cli_args_free(&a);
        return rc;
    }
    train_ckpt x, y;
    char err[TRAIN_ERR_LEN];
    if (train_ckpt_load(a.pos[0], &x, err, sizeof err)) {
        fprintf(stderr, "muon ckpt-diff: %s\n", err);
        cli_args_free(&a);
        return 1;
    }
    if (train_ckpt_load(a.pos[1], &y, err, sizeof err)) {
        fprintf(stderr, "muon ckpt-diff: %s\n", err);
        train_ckpt_free(&x);
        cli_args_free(&a);
        return 1;
    }
    const gpt_config *p = &x.cfg.model, *q = &y.cfg.model;
    if (p->vocab != q->vocab || p->context != q->context || p->layers != q->layers ||
        p->dim != q->dim || p->heads != q->heads || x.n_params != y.n_params) {
        fprintf(stderr, "muon ckpt-diff: the checkpoints hold different models "
                        "(V=%d T=%d L=%d D=%d H=%d vs V=%d T=%d L=%d D=%d H=%d)\n",
                p->vocab, p->context, p->layers, p->dim, p->heads, q->vocab, q->context,
                q->layers, q->dim, q->heads);
        rc = 1;
    } else {
        double max = 0;
        size_t differ = 0;
        for (size_t i = 0; i < x.n_params; i++) {
            double d = fabs((double)x.params[i] - (double)y.params[i]);
            if (memcmp(&x.params[i], &y.params[i], sizeof(float)) != 0)
                differ++;
            if (!(d <= max)) /* NaN counts as the largest */
                max = d;
        }
        printf("max_abs_diff %.9g\n", max);
        printf("differing %zu of %zu parameters (step %ld vs %ld)%s\n", differ, x.n_params,
               x.step, y.step, differ ? "" : ": bit-identical");
    }
    train_ckpt_free(&x);
    train_ckpt_free(&y);
    cli_args_free(&a);
    return rc;
}
