/* The CUDA backend's entry points on any machine: build/libmuon_cuda.so is
 * loaded with dlopen (the runner itself never links CUDA), and every call
 * that needs no device is checked: NULL and bad arguments give their
 * status, and without a device creation is refused with a reason. Skipped
 * when the library was not built (no nvcc). The GPU checks are
 * tests/gpu/ (build/test_cuda). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "testutil.h"

typedef struct muon_cuda muon_cuda;
typedef struct muon_cuda_opt muon_cuda_opt;

typedef struct {
    void *so;
    int (*device_count)(void);
    muon_status (*create)(int, muon_cuda **);
    void (*free_ctx)(muon_cuda *);
    const char *(*last_error)(void);
    const char *(*error)(const muon_cuda *);
    muon_status (*set_stream)(muon_cuda *, void *);
    muon_status (*synchronize)(muon_cuda *);
    muon_status (*orthogonalize)(muon_cuda *, const muon_ortho_config *, const float *, float *,
                                 long, long, long);
    muon_status (*opt_create)(muon_cuda *, const muon_opt_config *, muon_cuda_opt **);
    void (*opt_free)(muon_cuda_opt *);
    muon_status (*add_param)(muon_cuda_opt *, const char *, float *, const float *, int,
                             const long *, muon_role, int *);
    muon_status (*set_buffers)(muon_cuda_opt *, int, float *, const float *);
    muon_status (*finalize)(muon_cuda_opt *);
    muon_status (*step)(muon_cuda_opt *, double);
    muon_status (*set_lr)(muon_cuda_opt *, double, double);
    const char *(*opt_error)(const muon_cuda_opt *);
    muon_status (*param_state)(muon_cuda_opt *, int, float **, int *, long *);
    muon_status (*set_param_steps)(muon_cuda_opt *, int, long);
    muon_status (*hold_param)(muon_cuda_opt *, int, int);
    int (*uses_muon)(const muon_cuda_opt *, int);
    int (*num_params)(const muon_cuda_opt *);
} cuda_api;

/* 1 loaded, 0 not built (reason set), -1 built but not loadable */
static int load(cuda_api *a, char *why, size_t cap)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/libmuon_cuda.so", tu_build_dir());
    if (stat(path, &st) != 0) {
        snprintf(why, cap, "%s not built (nvcc not found when make ran)", path);
        return 0;
    }
    memset(a, 0, sizeof *a);
    /* RTLD_NODELETE: the CUDA runtime keeps what it allocated at its first
     * call in its own globals; unmapped by dlclose, those would be reported
     * as leaks by the sanitizer build's LeakSanitizer */
    a->so = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!a->so) {
        snprintf(why, cap, "dlopen %s: %s", path, dlerror());
        return -1;
    }
    /* POSIX: a function pointer may be stored through a void * */
#define SYM(field, name) *(void **)(&a->field) = dlsym(a->so, name)
    SYM(device_count, "muon_cuda_device_count");
    SYM(create, "muon_cuda_create");
    SYM(free_ctx, "muon_cuda_free");
    SYM(last_error, "muon_cuda_last_error");
    SYM(error, "muon_cuda_error");
    SYM(set_stream, "muon_cuda_set_stream");
    SYM(synchronize, "muon_cuda_synchronize");
    SYM(orthogonalize, "muon_cuda_orthogonalize");
    SYM(opt_create, "muon_cuda_opt_create");
    SYM(opt_free, "muon_cuda_opt_free");
    SYM(add_param, "muon_cuda_opt_add_param");
    SYM(set_buffers, "muon_cuda_opt_set_buffers");
    SYM(finalize, "muon_cuda_opt_finalize");
    SYM(step, "muon_cuda_opt_step");
    SYM(set_lr, "muon_cuda_opt_set_lr");
    SYM(opt_error, "muon_cuda_opt_error");
    SYM(param_state, "muon_cuda_opt_param_state");
    SYM(set_param_steps, "muon_cuda_opt_set_param_steps");
    SYM(hold_param, "muon_cuda_opt_hold_param");
    SYM(uses_muon, "muon_cuda_opt_uses_muon");
    SYM(num_params, "muon_cuda_opt_num_params");
#undef SYM
    return 1;
}

TEST(cuda_nodevice_null_and_bad_arguments)
{
    cuda_api a;
    char why[1200];
    int l = load(&a, why, sizeof why);
    if (l == 0)
        SKIP(why);
    if (l < 0)
        printf("    %s\n", why);
    ASSERT(l == 1);
    ASSERT(a.device_count && a.create && a.free_ctx && a.last_error && a.error && a.set_stream &&
           a.synchronize && a.orthogonalize && a.opt_create && a.opt_free && a.add_param &&
           a.set_buffers && a.finalize && a.step && a.set_lr && a.opt_error && a.param_state &&
           a.set_param_steps && a.hold_param && a.uses_muon && a.num_params);

    ASSERT_STATUS(a.create(0, NULL), MUON_ERR_NULL);
    ASSERT(strlen(a.last_error()) > 0);
    a.free_ctx(NULL);
    ASSERT(a.error(NULL) != NULL);
    ASSERT_STATUS(a.set_stream(NULL, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(a.synchronize(NULL), MUON_ERR_NULL);
    muon_ortho_config oc = muon_ortho_config_default();
    float x[4] = {1, 0, 0, 1};
    ASSERT_STATUS(a.orthogonalize(NULL, &oc, x, x, 1, 2, 2), MUON_ERR_NULL);

    /* the config is checked before the context: no device needed */
    muon_opt_config cfg = muon_opt_config_default();
    muon_cuda_opt *o = NULL;
    ASSERT_STATUS(a.opt_create(NULL, NULL, &o), MUON_ERR_NULL);
    ASSERT_STATUS(a.opt_create(NULL, &cfg, NULL), MUON_ERR_NULL);
    muon_opt_config bad = cfg;
    bad.momentum = -1;
    ASSERT_STATUS(a.opt_create(NULL, &bad, &o), MUON_ERR_ARG);
    ASSERT(strlen(a.last_error()) > 0);
    bad = cfg;
    bad.ortho.steps = -3;
    ASSERT_STATUS(a.opt_create(NULL, &bad, &o), MUON_ERR_ARG);
    bad = cfg;
    bad.algo = MUON_ALGO_SGDM;
    ASSERT_STATUS(a.opt_create(NULL, &bad, &o), MUON_ERR_UNSUPPORTED);
    bad = cfg;
    bad.ortho.method = MUON_ORTHO_SVD;
    bad.ortho.precision = MUON_PRECISION_FP32;
    ASSERT_STATUS(a.opt_create(NULL, &bad, &o), MUON_ERR_UNSUPPORTED);
    bad = cfg;
    bad.spectrum_power = 2.0;
    ASSERT_STATUS(a.opt_create(NULL, &bad, &o), MUON_ERR_UNSUPPORTED);
    ASSERT_STATUS(a.opt_create(NULL, &cfg, &o), MUON_ERR_NULL);
    ASSERT(o == NULL);

    long shape[2] = {2, 2};
    a.opt_free(NULL);
    ASSERT_STATUS(a.add_param(NULL, "w", x, x + 2, 2, shape, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_NULL);
    ASSERT_STATUS(a.set_buffers(NULL, 0, NULL, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(a.finalize(NULL), MUON_ERR_NULL);
    ASSERT_STATUS(a.step(NULL, 1.0), MUON_ERR_NULL);
    ASSERT_STATUS(a.set_lr(NULL, 1e-3, 1e-3), MUON_ERR_NULL);
    ASSERT(a.opt_error(NULL) != NULL);
    ASSERT_STATUS(a.param_state(NULL, 0, NULL, NULL, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(a.set_param_steps(NULL, 0, 1), MUON_ERR_NULL);
    ASSERT_STATUS(a.hold_param(NULL, 0, 1), MUON_ERR_NULL);
    ASSERT_EQ_INT(a.uses_muon(NULL, 0), -1);
    ASSERT_EQ_INT(a.num_params(NULL), 0);
    dlclose(a.so);
}

TEST(cuda_nodevice_create_refused_without_a_device)
{
    cuda_api a;
    char why[1200];
    int l = load(&a, why, sizeof why);
    if (l == 0)
        SKIP(why);
    ASSERT(l == 1);
    int n = a.device_count();
    ASSERT(n >= 0);
    muon_cuda *c = NULL;
    /* a device index past the end is refused whatever the machine has */
    ASSERT_STATUS(a.create(n, &c), MUON_ERR_UNSUPPORTED);
    ASSERT(c == NULL && strlen(a.last_error()) > 0);
    ASSERT_STATUS(a.create(-1, &c), MUON_ERR_UNSUPPORTED);
    if (n == 0) {
        ASSERT_STATUS(a.create(0, &c), MUON_ERR_UNSUPPORTED);
        ASSERT(c == NULL);
        printf("    no device: %s\n", a.last_error());
        ASSERT(strlen(a.last_error()) > 0);
        dlclose(a.so);
        return;
    }
    /* a GPU is here: the checks that come before any kernel */
    ASSERT_OK(a.create(0, &c));
    ASSERT_EQ_INT(strlen(a.last_error()), 0);
    muon_ortho_config oc = muon_ortho_config_default();
    float *dummy = (float *)(uintptr_t)256; /* never dereferenced: refused first */
    ASSERT_STATUS(a.orthogonalize(c, &oc, dummy, dummy, 0, 4, 4), MUON_ERR_SIZE);
    ASSERT(strlen(a.error(c)) > 0);
    ASSERT_STATUS(a.orthogonalize(c, &oc, NULL, dummy, 1, 4, 4), MUON_ERR_NULL);
    oc.method = MUON_ORTHO_SVD;
    oc.precision = MUON_PRECISION_FP32;
    ASSERT_STATUS(a.orthogonalize(c, &oc, dummy, dummy, 1, 4, 4), MUON_ERR_UNSUPPORTED);
    muon_opt_config cfg = muon_opt_config_default();
    muon_cuda_opt *o = NULL;
    ASSERT_OK(a.opt_create(c, &cfg, &o));
    long shape[2] = {4, 4}, zero[2] = {4, 0};
    ASSERT_STATUS(a.add_param(o, "w", dummy, NULL, 2, zero, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    ASSERT_STATUS(a.add_param(o, "b", dummy, NULL, 1, shape, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ARG);
    ASSERT_STATUS(a.add_param(o, "w", dummy, dummy + 4, 2, shape, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ALIAS);
    ASSERT_STATUS(a.step(o, 1.0), MUON_ERR_STATE);
    ASSERT_STATUS(a.finalize(o), MUON_ERR_STATE); /* nothing registered */
    ASSERT_STATUS(a.set_lr(o, -1, 0), MUON_ERR_ARG);
    ASSERT_EQ_INT(a.uses_muon(o, 0), -1);
    /* no parameter 0 yet, nor any negative index */
    ASSERT_STATUS(a.hold_param(o, 0, 1), MUON_ERR_ARG);
    ASSERT_STATUS(a.hold_param(o, -1, 0), MUON_ERR_ARG);
    ASSERT(strlen(a.opt_error(o)) > 0);
    a.opt_free(o);
    a.free_ctx(c);
    dlclose(a.so);
}
