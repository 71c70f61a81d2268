#include "RNNBLAS.h"
#include "RNNCPU.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBLAS enumeration values (the reference CBLAS header's). */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*name_fn)(void);

static sgemm_fn p_sgemm;
static sgemv_fn p_sgemv;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static name_fn p_corename, p_config;
static char requested[32];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

const char *rnn_blas_core_for_features(unsigned f) {
    const unsigned avx512 = RNN_CPU_AVX512F | RNN_CPU_AVX512BW | RNN_CPU_AVX512VL | RNN_CPU_AVX512DQ;
    if ((f & avx512) == avx512) return (f & RNN_CPU_AVX512_BF16) ? "Cooperlake" : "SkylakeX";
    if ((f & (RNN_CPU_AVX2 | RNN_CPU_FMA)) == (RNN_CPU_AVX2 | RNN_CPU_FMA)) return "Haswell";
    if (f & RNN_CPU_AVX) return "Sandybridge";
    if (f & RNN_CPU_SSE42) return "Nehalem";
    return "Prescott";
}

static void *symbol(void *lib, const char *name, const char *file) {
    void *s = dlsym(lib, name);
    if (!s) {
        fprintf(stderr, "%s: has no symbol %s (an OpenBLAS library is needed)\n", file, name);
        exit(1);
    }
    return s;
}

static void load(void) {
#if defined(__x86_64__)
    snprintf(requested, sizeof requested, "%s", rnn_blas_core_for_features(rnn_cpu_features_at(rnn_isa())));
    const char *old = getenv("OPENBLAS_CORETYPE");
    char *saved = old ? strdup(old) : NULL;
    setenv("OPENBLAS_CORETYPE", requested, 1);
#endif
#if defined(__APPLE__)
    static const char *names[] = {"libopenblas.dylib", "libopenblas.0.dylib", NULL};
#else
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so", NULL};
#endif
    void *lib = NULL;
    const char *file = NULL;
    for (int i = 0; names[i] && !lib; i++) { file = names[i]; lib = dlopen(file, RTLD_NOW | RTLD_LOCAL); }
#if defined(__x86_64__)
    if (saved) { setenv("OPENBLAS_CORETYPE", saved, 1); free(saved); } else unsetenv("OPENBLAS_CORETYPE");
#endif
    if (!lib) {
        fprintf(stderr, "%s: cannot load OpenBLAS (%s); install it, e.g. apt-get install libopenblas0\n", names[0], dlerror());
        exit(1);
    }
    p_sgemm = (sgemm_fn)symbol(lib, "cblas_sgemm", file);
    p_sgemv = (sgemv_fn)symbol(lib, "cblas_sgemv", file);
    p_set_threads = (set_threads_fn)symbol(lib, "openblas_set_num_threads", file);
    p_get_threads = (get_threads_fn)symbol(lib, "openblas_get_num_threads", file);
    p_corename = (name_fn)symbol(lib, "openblas_get_corename", file);
    p_config = (name_fn)symbol(lib, "openblas_get_config", file);
}

void rnn_blas_load(void) { pthread_once(&load_once, load); }

/* Load before main, while the process has one thread (setenv is not thread-safe). */
__attribute__((constructor)) static void load_at_startup(void) { rnn_blas_load(); }

void rnn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    p_sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void rnn_sgemv(int trans, int rows, int cols, float alpha, const float *a, int lda, const float *x,
               float beta, float *y) {
    p_sgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, rows, cols, alpha, a, lda, x, 1, beta, y, 1);
}

void rnn_blas_set_threads(int threads) { rnn_blas_load(); p_set_threads(threads < 1 ? 1 : threads); }
int rnn_blas_threads(void) { rnn_blas_load(); return p_get_threads(); }
const char *rnn_blas_core(void) { rnn_blas_load(); return p_corename(); }
const char *rnn_blas_requested_core(void) { rnn_blas_load(); return requested; }
const char *rnn_blas_config(void) { rnn_blas_load(); return p_config(); }
