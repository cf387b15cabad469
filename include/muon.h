/*
 * muon.h - the one public header of libmuon: the Muon optimizer family in C.
 *
 * A training loop with the hybrid optimizer (Muon for hidden matrices, AdamW
 * for embeddings, the output head and every vector):
 *
 *     muon_opt_config cfg = muon_opt_config_default();   // Moonlight recipe
 *     cfg.lr = 1e-3; cfg.weight_decay = 0.1;
 *     muon_opt *opt;
 *     if (muon_opt_create(&cfg, &opt) != MUON_OK) return 1;
 *     long s_qkv[2] = {3 * d, d}, s_wte[2] = {vocab, d}, s_ln[1] = {d};
 *     // the caller owns W and G; the library keeps the pointers
 *     muon_opt_add_param(opt, "h.0.qkv", W_qkv, G_qkv, 2, s_qkv, MUON_ROLE_MATRIX, NULL);
 *     muon_opt_add_param(opt, "wte", W_wte, G_wte, 2, s_wte, MUON_ROLE_EMBEDDING, NULL);
 *     muon_opt_add_param(opt, "ln_f", W_ln, G_ln, 1, s_ln, MUON_ROLE_VECTOR, NULL);
 *     if (muon_opt_finalize(opt) != MUON_OK) ...;       // sizes every workspace once
 *     for (int step = 0; step < n_steps; step++) {
 *         forward_backward(...);                         // fills G_*
 *         muon_status s = muon_opt_step(opt, schedule(step));  // fp32: never allocates
 *         if (s != MUON_OK) fprintf(stderr, "%s\n", muon_opt_error(opt));
 *     }
 *     muon_opt_save(opt, "opt.state");
 *     muon_opt_free(opt);
 *
 * The orthogonalization kernel alone:
 *
 *     muon_ortho_config oc = muon_ortho_config_default();  // polar-express, 5 steps
 *     size_t bytes;
 *     muon_ortho_workspace_size(&oc, rows, cols, &bytes);
 *     void *work = malloc(bytes);
 *     muon_orthogonalize(&oc, G, O, rows, cols, work, bytes);
 *
 * Conventions: every call returns a muon_status (MUON_OK == 0) and changes
 * nothing when it fails; muon_strerror() names a status. The library never
 * exits and never prints, except through a log callback the caller sets.
 * Matrices are row-major float32, rows x cols (PyTorch layout: rows = fan_out).
 */
#ifndef MUON_H
#define MUON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUON_VERSION_MAJOR 0
#define MUON_VERSION_MINOR 1
#define MUON_VERSION_PATCH 0
/* "0.1.0" */
const char *muon_version(void);

/* ------------------------------------------------------------------ errors */

typedef enum {
    MUON_OK = 0,
    MUON_ERR_NULL,        /* a required pointer is NULL */
    MUON_ERR_SIZE,        /* a size is zero, negative or overflows */
    MUON_ERR_SHAPE,       /* a shape does not match the registered one */
    MUON_ERR_ARG,         /* an option value is out of range or unknown */
    MUON_ERR_NONFINITE,   /* NaN or Inf in a gradient: that update was refused */
    MUON_ERR_NOMEM,       /* an allocation failed */
    MUON_ERR_IO,          /* a file could not be opened, read or written */
    MUON_ERR_FORMAT,      /* a file is truncated, malformed or not ours */
    MUON_ERR_CHECKSUM,    /* a file's checksum does not match its contents */
    MUON_ERR_VERSION,     /* a file was written by an unsupported version */
    MUON_ERR_MISMATCH,    /* saved state does not match the registered params */
    MUON_ERR_STATE,       /* call out of order (e.g. add after finalize) */
    MUON_ERR_DUPLICATE,   /* a parameter name is registered twice */
    MUON_ERR_ALIAS,       /* buffers that must be distinct overlap */
    MUON_ERR_WORKSPACE,   /* the workspace given is too small */
    MUON_ERR_LAPACK,      /* LAPACK failed (e.g. SVD did not converge) */
    MUON_ERR_UNSUPPORTED, /* the combination of options is not supported */
    MUON_STATUS_COUNT
} muon_status;

/* A static, human-readable description of a status. Never NULL. */
const char *muon_strerror(muon_status s);
/* The status's identifier, e.g. "MUON_ERR_SHAPE". Never NULL. */
const char *muon_status_name(muon_status s);

/* The library's only global: a callback for diagnostics (default: none). */
typedef void (*muon_log_fn)(void *user, const char *message);
void muon_set_log(muon_log_fn fn, void *user);

/* OpenBLAS's process-wide thread count, for programs that want to set it:
 * the library itself reads it (muon_orthogonalize's default thread count)
 * but never leaves it changed. n <= 0 selects the number of cores. */
void muon_set_blas_threads(int n);
int muon_get_blas_threads(void);

/* ----------------------------------------------------------------- backend */

/* Which library and kernel runs each kind of product, chosen once from
 * what the machine reports (docs/backend.md). The default backend is the
 * fast one for this CPU; the reference runs every product as one plain
 * OpenBLAS call, for comparisons by tolerance. */
typedef enum {
    MUON_BACKEND_CPU = 0, /* the fast path: OpenBLAS and oneDNN as the machine suits */
    MUON_BACKEND_CPU_REF, /* the reference: OpenBLAS calls, bf16 widened to fp32 */
    MUON_BACKEND_KIND_COUNT
} muon_backend_kind;

/* Parse "cpu" | "cpu-ref". */
muon_status muon_backend_kind_parse(const char *name, muon_backend_kind *out);
const char *muon_backend_kind_name(muon_backend_kind k);

typedef enum {
    MUON_PRODUCT_SYRK = 0,   /* Gram matrices X X^T (orthogonalization) */
    MUON_PRODUCT_GEMM,       /* general fp32 products */
    MUON_PRODUCT_GEMM_WGRAD, /* A^T B with more than wgrad_min_rows rows (weight gradients) */
    MUON_PRODUCT_GEMM_BF16,  /* bf16 operands, fp32 accumulation and result */
    MUON_PRODUCT_COUNT
} muon_product;
const char *muon_product_name(muon_product p); /* "syrk", "gemm", ... */

typedef enum {
    MUON_KERNEL_OPENBLAS = 0, /* OpenBLAS's cblas_ssyrk / cblas_sgemm */
    MUON_KERNEL_ONEDNN,       /* oneDNN's dnnl_sgemm or bf16 matmul primitive */
    MUON_KERNEL_BF16_WIDENED, /* bf16 operands widened to fp32, OpenBLAS's SGEMM */
    MUON_KERNEL_COUNT
} muon_kernel;
const char *muon_kernel_name(muon_kernel k); /* "openblas", "onednn", "bf16-widened" */

/* The table a backend runs by, and the machine it was chosen for. Fields
 * may be added at the end in later versions. */
typedef struct {
    muon_backend_kind kind;
    int threads; /* threads its products run on (0: the caller's, see below) */
    muon_kernel kernel[MUON_PRODUCT_COUNT];
    long wgrad_min_rows;  /* MUON_PRODUCT_GEMM_WGRAD: A^T B with more rows than this */
    int syrk_panels;      /* > 0: SYRKs of m >= syrk_panel_min by this many row panels,
                             each an OpenBLAS SYRK of its diagonal block and a GEMM */
    long syrk_panel_min;
    int split;            /* 1: on T > 1 threads SYRKs go by split_panels_per_thread * T
                             panels over T OpenMP threads, OpenBLAS on one thread */
    int split_panels_per_thread;
    double one_thread_flops; /* muon_sgemm: products below this many multiply-adds, or with
                                fewer than rows_per_thread rows a thread, run on one thread */
    long rows_per_thread;
    double bf16_one_thread_flops; /* the same for bf16 products */
    /* the machine, read once per process */
    int cores;
    int avx2, avx512, avx512_bf16, amx; /* CPUID, with the OS saving the registers */
    const char *openblas_core;          /* openblas_get_corename() */
    int openblas_avx512;                /* OpenBLAS runs AVX-512 kernels */
    const char *onednn_isa;             /* dnnl_get_effective_cpu_isa(), e.g. "avx512_core_bf16" */
    int bf16_native; /* bf16 products on AVX512-BF16 or AMX units (0 also under MUON_BF16=emulate) */
    /* MUON_PRECISION_AUTO: bf16 products taken to run this many times
     * faster than fp32 ones (0: never mixed), for matrices whose smaller
     * side is at least auto_mixed_min */
    double bf16_speedup;
    long auto_mixed_min;
} muon_backend_info;

/* A backend context: the table for one kind on this machine, with its
 * thread count (threads <= 0 selects the number of cores). It keeps no
 * pointer to anything the caller owns; one context may serve several
 * threads' calls at once. */
typedef struct muon_backend muon_backend;
muon_status muon_backend_create(muon_backend_kind kind, int threads, muon_backend **out);
void muon_backend_free(muon_backend *be);
/* be NULL: the default backend, whose products run on the caller's thread
 * count (OpenBLAS's, or one inside an OpenMP parallel region). */
muon_status muon_backend_info_get(const muon_backend *be, muon_backend_info *info);

/* Row-major C (M x N) = alpha op(A) op(B) + beta C, op(X) = X^T when tX,
 * on be's table (NULL: the default) and `threads` threads (<= 0: one).
 * Rows are split over OpenMP threads, each block one single-threaded
 * product, so results do not depend on the thread count. Inside an
 * OpenMP parallel region it runs on the calling thread. */
muon_status muon_sgemm(const muon_backend *be, int ta, int tb, long M, long N, long K, float alpha,
                       const float *A, long lda, const float *B, long ldb, float beta, float *C,
                       long ldc, int threads);

/* bfloat16: fp32's sign and exponent, 8 bits of mantissa. */
typedef uint16_t muon_bf16;
/* dst[i] = src[i] rounded to nearest even (NaN stays NaN), on `threads`
 * threads for big arrays (<= 0: one). */
void muon_to_bf16(muon_bf16 *dst, const float *src, size_t n, int threads);
/* Row-major C (m x n, fp32, leading dimension ldc) = alpha op(A) op(B) +
 * beta C with A and B bf16 and contiguous: op(A) m x k (A stored k x m
 * when ta), op(B) k x n (B stored n x k when tb). On be's
 * MUON_PRODUCT_GEMM_BF16 kernel (NULL: the default backend) and
 * `threads` threads (<= 0: one; one inside a parallel region).
 * MUON_ERR_NOMEM only when the widened copies cannot be allocated; C is
 * then untouched. */
muon_status muon_gemm_bf16(const muon_backend *be, int ta, int tb, long m, long n, long k,
                           float alpha, const muon_bf16 *A, const muon_bf16 *B, float beta,
                           float *C, long ldc, int threads);

/* ------------------------------------------------------- orthogonalization */

typedef enum {
    MUON_ORTHO_AUTO = 0, /* Gram NS when max(m,n) >= 1.5 min(m,n), else NS */
    MUON_ORTHO_NS,       /* Newton-Schulz on X (docs/algorithms.md 1a) */
    MUON_ORTHO_GRAM_NS,  /* Gram Newton-Schulz with restarts (1b) */
    MUON_ORTHO_SVD,      /* exact polar factor U V^T via LAPACKE sgesdd (1c) */
    MUON_ORTHO_METHOD_COUNT
} muon_ortho_method;

typedef enum {
    MUON_COEFFS_POLAR_EXPRESS = 0, /* Amsel et al. 2025, safety factor, s = 1.01 */
    MUON_COEFFS_KELLER,            /* (3.4445, -4.7750, 2.0315) every step */
    MUON_COEFFS_QUINTIC5,          /* five per-step triples */
    MUON_COEFFS_TAYLOR,            /* taylor-K, K in taylor_k (1..5), convergent */
    MUON_COEFFS_COUNT
} muon_coeffs;

/* Gram NS restart steps: bit t set = restart before step t (default: before
 * step 3, the most accurate single restart measured). Bit 0 alone
 * (MUON_GRAM_NO_RESTARTS) means "never restart"; 0 selects the default. */
#define MUON_GRAM_NO_RESTARTS 1u
#define MUON_GRAM_DEFAULT_RESTARTS (1u << 3) /* measured: docs/ortho.md */

/* Precision of the orthogonalization's products. "mixed" runs every step
 * but the last two with bf16 operands and fp32 accumulation (the AMX tile
 * or AVX512-BF16 units where the CPU has them, through oneDNN; elsewhere
 * emulated in fp32 at fp32 speed), then the last two steps in fp32: those
 * two set the singular values, so the orthogonality error matches fp32's
 * while the direction moves by ~1e-2 relative (docs/ortho.md,
 * "Precision"). "auto" (the default) is mixed for the matrices where the
 * backend's bf16 units make it faster, fp32 for the rest: fp32 on a CPU
 * without native bf16 products (muon_ortho_resolve says which). */
typedef enum {
    MUON_PRECISION_FP32 = 0, /* every product in fp32 */
    MUON_PRECISION_MIXED,    /* bf16 operands but for the last two steps */
    MUON_PRECISION_AUTO,     /* mixed where faster on the backend, else fp32 */
    MUON_PRECISION_COUNT
} muon_precision;

typedef struct {
    muon_ortho_method method;
    muon_coeffs coeffs;
    int taylor_k;           /* 1..5 for MUON_COEFFS_TAYLOR, else ignored */
    int steps;              /* iterations, >= 1; 0 selects 5 */
    double safety;          /* polar-express safety factor; 0 selects 1.01 */
    double eps;             /* normalization epsilon; 0 selects 1e-7 */
    int aol;                /* 1: AOL rescaling replaces Frobenius normalization */
    unsigned gram_restarts; /* see MUON_GRAM_* above */
    muon_precision precision; /* svd refuses mixed and runs auto in fp32 */
} muon_ortho_config;

/* Defaults: AUTO method, polar-express coefficients, 5 steps, no AOL,
 * AUTO precision. */
muon_ortho_config muon_ortho_config_default(void);

/* Parse "ns" | "gram-ns" | "svd" | "auto". */
muon_status muon_ortho_method_parse(const char *name, muon_ortho_method *out);
const char *muon_ortho_method_name(muon_ortho_method m);
/* The precision a model's matrix products run in on be (NULL: the default)
 * when p is asked for: MUON_PRECISION_AUTO becomes mixed where the backend
 * has native bf16 products, else fp32; fp32 and mixed stay as they are. */
muon_precision muon_backend_layer_precision(const muon_backend *be, muon_precision p);
/* Parse "fp32" | "mixed" | "auto". */
muon_status muon_precision_parse(const char *name, muon_precision *out);
const char *muon_precision_name(muon_precision p);
/* Parse "keller" | "quintic5" | "polar-express" | "taylor-K" (K = 1..5) into
 * cfg->coeffs and cfg->taylor_k; cfg is untouched on error. */
muon_status muon_coeffs_parse(const char *name, muon_ortho_config *cfg);
/* Writes the name ("taylor-3" etc.) into buf; returns buf. */
const char *muon_coeffs_name(const muon_ortho_config *cfg, char *buf, size_t cap);
/* Gram NS restarts as text: "none", or the steps to restart before, e.g.
 * "3" or "2,4", each in 1..steps-1 (steps <= 0 means the default 5). Parse
 * sets *bits (MUON_GRAM_NO_RESTARTS for "none"); MUON_ERR_ARG on anything
 * else, *bits untouched. Name writes the text of bits (0 = the default)
 * into buf and returns buf ("" when cap is 0). */
muon_status muon_gram_restarts_parse(const char *text, int steps, unsigned *bits);
const char *muon_gram_restarts_name(unsigned bits, char *buf, size_t cap);
/* Check every field; MUON_ERR_ARG names nothing, so keep configs simple. */
muon_status muon_ortho_config_validate(const muon_ortho_config *cfg);

/* Bytes of workspace muon_orthogonalize needs for a rows x cols matrix. */
muon_status muon_ortho_workspace_size(const muon_ortho_config *cfg, long rows, long cols,
                                      size_t *bytes);

/* out = polar(in) approximately (exactly for SVD). in and out may be the same
 * buffer. work must hold muon_ortho_workspace_size() bytes, or be NULL, in
 * which case the call allocates and frees its own. A zero matrix gives zeros.
 * Non-finite input gives MUON_ERR_NONFINITE and leaves out untouched. */
muon_status muon_orthogonalize(const muon_ortho_config *cfg, const float *in, float *out,
                               long rows, long cols, void *work, size_t work_bytes);
/* The same on a backend context, on its thread count. */
muon_status muon_orthogonalize_on(const muon_backend *be, const muon_ortho_config *cfg,
                                  const float *in, float *out, long rows, long cols, void *work,
                                  size_t work_bytes);

/* The config a call runs for a rows x cols matrix on be (NULL: the
 * default backend): every "0 selects the default" field filled, the AUTO
 * method and the AUTO precision resolved. MUON_ERR_ARG/SIZE as the call. */
muon_status muon_ortho_resolve(const muon_backend *be, const muon_ortho_config *cfg, long rows,
                               long cols, muon_ortho_config *out);

/* Floating-point operations one call performs on the default backend (for
 * GFLOP/s reports). */
double muon_ortho_flops(const muon_ortho_config *cfg, long rows, long cols);

/* Largest |s_i - 1| over the singular values of a rows x cols matrix (double
 * precision SVD); the orthogonality error reported by benches and tests. */
muon_status muon_ortho_error(const float *x, long rows, long cols, double *err);

/* --------------------------------------------------------------- optimizer */

typedef enum {
    MUON_ROLE_MATRIX = 0, /* hidden weight matrix: Muon in the hybrid */
    MUON_ROLE_EMBEDDING,  /* token embedding: AdamW in the hybrid */
    MUON_ROLE_HEAD,       /* output head: AdamW in the hybrid */
    MUON_ROLE_VECTOR,     /* norms, biases, every 1-D parameter: AdamW */
    MUON_ROLE_COUNT
} muon_role;

typedef enum {
    MUON_SCALE_MOONLIGHT = 0, /* 0.2 sqrt(max(rows, cols)): update RMS 0.2 like AdamW */
    MUON_SCALE_KELLER,        /* sqrt(max(1, rows / cols)) */
    MUON_SCALE_SPECTRAL,      /* sqrt(rows / cols) (muP) */
    MUON_SCALE_NONE,          /* 1 */
    MUON_SCALE_COUNT
} muon_scale_rule;

/* The update rules (docs/algorithms.md). "Hidden matrices" are MATRIX
 * params; the rest (embedding, head, vectors) go to AdamW unless said. */
typedef enum {
    MUON_ALGO_MUON = 0,   /* hybrid: Muon for MATRIX params, AdamW for the rest */
    MUON_ALGO_ADAMW,      /* AdamW for every parameter */
    MUON_ALGO_SGDM,       /* SGD with momentum (mu, Nesterov, lr, weight_decay) for every parameter */
    MUON_ALGO_SCALE,      /* SCALE: matrices, embedding and head take their gradient with
                             each row (embedding: column) rescaled to RMS 1, momentum 0.9
                             (EMA) on the head only; vectors AdamW */
    MUON_ALGO_FMUON,      /* F-Muon: alpha O + (1 - alpha) N / ||N||_F on hidden matrices */
    MUON_ALGO_SMUON,      /* S-Muon: alpha O + (1 - alpha) sign_scale sign(N) on hidden matrices */
    MUON_ALGO_FANION_K,   /* Fanion-k: the top fanion_k singular directions of N */
    MUON_ALGO_MUONALL,    /* every parameter through Muon; a 1-D one takes sign(N), the
                             polar factor of diag(N), without an n x n matrix */
    MUON_ALGO_ADAMW_MUON, /* AdamW for every parameter for its first switch_step updates,
                             then Muon with fresh momentum for the hidden matrices */
    MUON_ALGO_COUNT
} muon_algo;

typedef struct {
    muon_algo algo;
    /* Muon group (hidden matrices) */
    double lr;
    double momentum;     /* mu */
    int nesterov;        /* 1: N = G + mu M; 0: N = M */
    double weight_decay; /* decoupled: W *= 1 - lr * weight_decay */
    muon_scale_rule scale;
    muon_ortho_config ortho;
    /* AdamW group (everything else; every param when algo == ADAMW) */
    double adam_lr;
    double adam_beta1, adam_beta2, adam_eps;
    double adam_weight_decay;
    /* Threads for the step; <= 0 selects the number of cores. Matrices are
     * spread over threads with single-threaded BLAS inside each, or one big
     * matrix gets a multi-threaded BLAS, never both at once. */
    int threads;
    /* Variants (fields added at the end; defaults in muon_opt_config_default) */
    double fanion_alpha;   /* F-/S-Muon: weight of O, in [0, 1] (default 0.5) */
    double sign_scale;     /* S-Muon: eta_s, the factor of sign(N) (default 0.01) */
    int fanion_k;          /* Fanion-k: singular directions kept, >= 1 (default 16) */
    double spectrum_power; /* Muon rule: singular values s -> s^p, renormalized to O's
                              Frobenius norm, via the SVD; 0 is Muon (default), in [0, 8] */
    long switch_step;      /* AdamW-Muon: AdamW updates of a hidden matrix before it
                              switches to Muon, >= 0 (default 0) */
} muon_opt_config;

/* The Moonlight recipe: hybrid, lr 1e-3 for both groups, momentum 0.95,
 * Nesterov, weight decay 0.1 for both groups, moonlight scale, polar-express
 * 5 steps, AdamW betas (0.9, 0.95), eps 1e-8. */
muon_opt_config muon_opt_config_default(void);
muon_status muon_opt_config_validate(const muon_opt_config *cfg);
muon_status muon_scale_parse(const char *name, muon_scale_rule *out); /* moonlight|keller|spectral|none */
const char *muon_scale_name(muon_scale_rule r);
muon_status muon_role_parse(const char *name, muon_role *out); /* matrix|embedding|head|vector */
/* muon|adamw|sgdm|scale|fmuon|smuon|fanion-k|muonall|adamw-muon */
muon_status muon_algo_parse(const char *name, muon_algo *out);
const char *muon_algo_name(muon_algo a);
const char *muon_role_name(muon_role r);
/* The factor Muon multiplies the orthogonalized update by. */
double muon_scale_factor(muon_scale_rule r, long rows, long cols);

typedef struct muon_opt muon_opt;

muon_status muon_opt_create(const muon_opt_config *cfg, muon_opt **out);
void muon_opt_free(muon_opt *opt);

/* Register a parameter before finalize. shape has ndim >= 1 entries; N-D
 * tensors are viewed as (shape[0], product of the rest); 1-D as (1, n);
 * a 3-D MATRIX param [E, rows, cols] is a stack of E matrices (mixture-of-
 * experts weights): each is orthogonalized on its own and the scale rule
 * takes its rows x cols (register a conv1d kernel as 2-D to flatten it).
 * w (updated in place) and g (read) are owned by the caller, hold the
 * product of shape floats and must not overlap. g may be NULL and set later
 * with muon_opt_set_grad. A MATRIX role needs ndim >= 2. Names are unique,
 * at most 127 bytes, and key the saved state. *index (if not NULL) receives
 * the parameter's index, counting from 0 in registration order. */
muon_status muon_opt_add_param(muon_opt *opt, const char *name, float *w, const float *g,
                               int ndim, const long *shape, muon_role role, int *index);
/* Point parameter `index` at new weight / gradient buffers; ndim and shape
 * must equal the registered ones (MUON_ERR_SHAPE otherwise). w may be NULL to
 * keep the current weights. */
muon_status muon_opt_set_buffers(muon_opt *opt, int index, float *w, const float *g, int ndim,
                                 const long *shape);
/* Point parameter `index` at a new gradient buffer of the registered shape. */
muon_status muon_opt_set_grad(muon_opt *opt, int index, const float *g);
/* The backend the optimizer's products run on (default MUON_BACKEND_CPU);
 * before finalize, which builds the optimizer's own backend context. */
muon_status muon_opt_set_backend(muon_opt *opt, muon_backend_kind kind);
/* Size every workspace and the backend context; after this no call
 * allocates until free. */
muon_status muon_opt_finalize(muon_opt *opt);

/* One update of every parameter with learning rates cfg.lr * lr_mult and
 * cfg.adam_lr * lr_mult (a schedule's multiplier; 1.0 for none). A parameter
 * whose gradient holds NaN or Inf is not updated (weights and state stay as
 * they were), the others are, and the call returns MUON_ERR_NONFINITE with
 * the names in muon_opt_error(). */
muon_status muon_opt_step(muon_opt *opt, double lr_mult);

/* Change the learning rate / weight decay of a group between steps. */
muon_status muon_opt_set_lr(muon_opt *opt, double muon_lr, double adam_lr);

/* The message of the last failed call on opt, naming the parameter where
 * there is one; "" when the last call succeeded. */
const char *muon_opt_error(const muon_opt *opt);

typedef struct {
    const char *name;
    muon_role role;
    int uses_muon; /* 1: updated by Muon, 0: by AdamW */
    int ndim;
    long shape[8];
    long rows, cols; /* the 2-D view (of one matrix of a stack) */
    long steps;      /* updates applied to this parameter */
    int skipped;     /* 1 if the last step refused it (non-finite gradient) */
    long batch;       /* matrices in the stack (1 but for 3-D MATRIX params) */
    const char *rule; /* its update rule now: "muon", "adamw", "sgdm", "scale", ... */
} muon_param_info;

/* The state buffers of a finalized optimizer's parameter `index`, for
 * bindings that hold state in their own form: bufs (2 entries) receives
 * pointers to *count buffers of the parameter's element count (the Muon
 * rule: the momentum M; AdamW: the moments m, v; SGDM: M), owned by opt and
 * valid until it is freed; *steps the updates applied (AdamW's bias
 * correction counts them). Writing through the pointers between steps sets
 * the state. */
muon_status muon_opt_param_state(muon_opt *opt, int index, float **bufs, int *count,
                                 long *steps);
muon_status muon_opt_set_param_steps(muon_opt *opt, int index, long steps);
/* hold = 1: the following steps leave parameter `index` as it is (weights,
 * state, step count; its gradient may be NULL), as PyTorch does for a
 * parameter without a gradient; hold = 0 returns it to the steps. */
muon_status muon_opt_hold_param(muon_opt *opt, int index, int hold);
int muon_opt_num_params(const muon_opt *opt);
muon_status muon_opt_param_info(const muon_opt *opt, int index, muon_param_info *info);
/* Bytes of optimizer state (momentum and moment buffers). */
size_t muon_opt_state_bytes(const muon_opt *opt);
/* Floating-point operations of one step's orthogonalizations, from the
 * optimizer's own configuration and parameters (0 for NULL). */
double muon_opt_ortho_flops(const muon_opt *opt);

/* Optimizer state as a versioned, checksummed blob (docs/state-format.md).
 * Loading validates everything first: on a mismatch in names, shapes or
 * algorithm nothing changes and muon_opt_error() names the parameter. */
muon_status muon_opt_save(const muon_opt *opt, const char *path); /* temp file + rename */
muon_status muon_opt_load(muon_opt *opt, const char *path);
muon_status muon_opt_serialized_size(const muon_opt *opt, size_t *bytes);
muon_status muon_opt_save_buffer(const muon_opt *opt, void *buf, size_t cap, size_t *written);
muon_status muon_opt_load_buffer(muon_opt *opt, const void *buf, size_t len);


/* ---------------------------------------------------- learning-rate schedules */

typedef enum {
    MUON_SCHED_CONSTANT = 0, /* warmup, then 1 */
    MUON_SCHED_COSINE,       /* warmup, then cosine from 1 down to min_ratio */
    MUON_SCHED_WSD,          /* warmup, stable at 1, linear decay to min_ratio over
                                the last decay_frac of the steps */
    MUON_SCHED_COUNT
} muon_schedule_kind;

typedef enum {
    MUON_DECAY_LINEAR = 0, /* 1 - (1 - min) k / (K - 1) */
    MUON_DECAY_XMODEL,     /* Xmodel-2.5: min + (2 * 0.5^(k / (K - 1)) - 1) (1 - min) */
    MUON_DECAY_COUNT
} muon_decay_shape;

typedef struct {
    muon_schedule_kind kind;
    long total_steps;  /* the run's step count, >= 1 */
    long warmup_steps; /* linear warmup from 1/warmup to 1; 0 for none */
    double min_ratio;  /* final multiplier of cosine and wsd, in [0, 1] */
    double decay_frac; /* wsd: fraction of total_steps spent decaying, (0, 1] */
    muon_decay_shape decay_shape; /* wsd: the decay phase's shape */
} muon_schedule;

/* constant, no warmup, min_ratio 0, decay_frac 0.2, linear decay */
muon_schedule muon_schedule_default(void);
muon_status muon_schedule_validate(const muon_schedule *s);
muon_status muon_schedule_parse(const char *name, muon_schedule_kind *out); /* constant|cosine|wsd */
const char *muon_schedule_name(muon_schedule_kind k);
muon_status muon_decay_shape_parse(const char *name, muon_decay_shape *out); /* linear|xmodel */
const char *muon_decay_shape_name(muon_decay_shape d);
/* First step (0-based) of wsd's decay phase (total_steps for other kinds):
 * where an AdamW-Muon run switches. */
long muon_schedule_decay_start(const muon_schedule *s);
/* The learning-rate multiplier for step (0-based, 0 <= step < total_steps);
 * steps past the end get the final value. */
double muon_schedule_multiplier(const muon_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif /* MUON_H */
