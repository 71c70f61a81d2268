/*
 * gemm_engines.c -- single-threaded row-major SGEMM throughput of candidate
 * GEMM engines on the shapes a char-level LSTM uses.
 *
 * Engines:
 *   openblas     cblas_sgemm from libopenblas.so.0 (dlopen'ed after setting
 *                OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS, which OpenBLAS
 *                reads in its load-time constructor)
 *   blis         cblas_sgemm from libblis.so.4 (dlopen'ed, 1 thread)
 *   dnnl_sgemm   dnnl_sgemm() from oneDNN (row-major C API)
 *   dnnl_matmul  oneDNN matmul primitive; the B operand ("weights") is
 *                reordered once into the layout the primitive prefers
 *                (format_tag any), then the primitive is executed repeatedly.
 *                The one-off reorder cost is reported as pack_ms.
 *
 * OpenBLAS and BLIS both export cblas_sgemm, so neither is linked: each is
 * dlopen'ed with RTLD_LOCAL and its symbols fetched with dlsym.
 * oneDNN is linked (-ldnnl) unless compiled with -DNO_DNNL.
 *
 * Output, one line per (engine, shape):
 *   engine=E core=C shape=MxNxK trans=AB gflops=G maxdiff=D refdiff=R best=G2 reps=N [...]
 * gflops  = 2*M*N*K*reps / total time (~--time seconds after warm-up)
 * best    = GFLOP/s of the fastest of 3 equal segments of that run
 * maxdiff = max over the other engines f of max|C_e - C_f| / max|C_f|
 * refdiff = max over ~256 sampled entries of |C_e - ref| / sum_k |a_ik*b_kj|
 *           (ref computed in double; catches a mistake shared by all engines)
 *
 * Usage: gemm_engines [--coretype NAME] [--time SEC] [--engines a,b,..]
 *                     [--shapes i,j,..]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef NO_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

/* CBLAS constants (values fixed by the CBLAS standard). */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K,
                               float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C,
                               int ldc);

typedef struct {
    const char *what;
    int M, N, K;
    char ta, tb; /* 'N' or 'T' */
} shape_t;

/* LSTM with T*B = 2048 rows, 4H = 1024 gate columns, H = 256, input 64/256. */
static const shape_t SHAPES[] = {
    {"fwd input projection X*W_ih^T, I=64", 2048, 1024, 64, 'N', 'T'},
    {"fwd input projection X*W_ih^T, I=256", 2048, 1024, 256, 'N', 'T'},
    {"weight grad dG^T*X", 1024, 256, 2048, 'T', 'N'},
    {"input grad dG*W", 2048, 256, 1024, 'N', 'N'},
    {"per-step h*W_hh^T, batch 16", 16, 1024, 256, 'N', 'T'},
    {"per-step h*W_hh^T, batch 1", 1, 1024, 256, 'N', 'T'},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

typedef struct {
    const shape_t *s;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} problem_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void *xalloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ engines */

typedef struct engine engine_t;
struct engine {
    const char *name;
    char core[96];
    char unavailable[160]; /* non-empty: reason the engine cannot run */
    /* per-shape hooks; prepare returns 0 on success (else fills msg) */
    int (*prepare)(engine_t *e, problem_t *p, char *msg, size_t msglen);
    void (*run)(engine_t *e, problem_t *p);
    void (*finish)(engine_t *e, problem_t *p);
    cblas_sgemm_fn sgemm;
    void *state;
    double pack_ms;   /* dnnl_matmul only */
    char impl[64];    /* dnnl_matmul only */
    char wfmt[96];    /* dnnl_matmul only: packed B layout */
};

static void run_cblas(engine_t *e, problem_t *p) {
    const shape_t *s = p->s;
    e->sgemm(CblasRowMajor, s->ta == 'T' ? CblasTrans : CblasNoTrans,
             s->tb == 'T' ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f,
             p->A, p->lda, p->B, p->ldb, 0.0f, p->C, p->ldc);
}

static void load_openblas(engine_t *e, const char *coretype) {
    e->name = "openblas";
    e->run = run_cblas;
    /* OpenBLAS reads these in its constructor, i.e. during dlopen. */
    if (coretype)
        setenv("OPENBLAS_CORETYPE", coretype, 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(e->unavailable, sizeof e->unavailable, "dlopen: %s", dlerror());
        return;
    }
    e->sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    char *(*config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
    if (!e->sgemm) {
        snprintf(e->unavailable, sizeof e->unavailable, "no cblas_sgemm");
        return;
    }
    if (set_threads)
        set_threads(1);
    snprintf(e->core, sizeof e->core, "%s", corename ? corename() : "?");
    printf("# openblas: %s; corename=%s; OPENBLAS_CORETYPE=%s\n",
           config ? config() : "?", e->core, coretype ? coretype : "(unset)");
}

static void load_blis(engine_t *e) {
    e->name = "blis";
    e->run = run_cblas;
    void *h = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(e->unavailable, sizeof e->unavailable, "dlopen: %s", dlerror());
        return;
    }
    e->sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    void (*set_threads)(long) = (void (*)(long))dlsym(h, "bli_thread_set_num_threads");
    char *(*version)(void) = (char *(*)(void))dlsym(h, "bli_info_get_version_str");
    int (*arch_id)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*arch_str)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    if (!e->sgemm) {
        snprintf(e->unavailable, sizeof e->unavailable, "no cblas_sgemm");
        return;
    }
    if (set_threads)
        set_threads(1);
    else
        fprintf(stderr, "warning: bli_thread_set_num_threads not found\n");
    snprintf(e->core, sizeof e->core, "%s",
             (arch_id && arch_str) ? arch_str(arch_id()) : "?");
    Dl_info info;
    const char *path = "?";
    if (dladdr((void *)e->sgemm, &info) && info.dli_fname)
        path = info.dli_fname;
    printf("# blis: version %s; arch=%s; %s\n", version ? version() : "?",
           e->core, path);
}

#ifndef NO_DNNL
static dnnl_engine_t g_dnnl_engine;
static dnnl_stream_t g_dnnl_stream;

#define DNNL_TRY(call, msg, msglen)                                           \
    do {                                                                      \
        dnnl_status_t st_ = (call);                                           \
        if (st_ != dnnl_success) {                                            \
            snprintf(msg, msglen, "%s failed (status %d)", #call, (int)st_);  \
            return 1;                                                         \
        }                                                                     \
    } while (0)

static const char *dnnl_isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_all: return "all";
    default: return "isa?";
    }
}

static const char *dnnl_runtime_name(unsigned r) {
    switch (r) {
    case DNNL_RUNTIME_NONE: return "none";
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    case DNNL_RUNTIME_OCL: return "OpenCL";
    default: return "?";
    }
}

static void run_dnnl_sgemm(engine_t *e, problem_t *p) {
    (void)e;
    const shape_t *s = p->s;
    dnnl_status_t st = dnnl_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, p->A,
                                  p->lda, p->B, p->ldb, 0.0f, p->C, p->ldc);
    if (st != dnnl_success) {
        fprintf(stderr, "dnnl_sgemm failed: status %d\n", (int)st);
        exit(1);
    }
}

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
    dnnl_primitive_desc_t pd;
} matmul_state_t;

/* Layout of a 2-D memory desc: outer strides of dims a (K) and b (N), then
 * inner blocks, e.g. "str=16384,16;blk=16b" or "str=1,64" (plain, B^T). */
static void describe_md(const dnnl_memory_desc_t *md, char *out, size_t len) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(out, len, "format_kind%d", (int)md->format_kind);
        return;
    }
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    int n = snprintf(out, len, "str=%lld,%lld", (long long)b->strides[0],
                     (long long)b->strides[1]);
    for (int i = 0; i < b->inner_nblks && n > 0 && (size_t)n < len; i++)
        n += snprintf(out + n, len - n, "%s%lld%c", i ? "" : ";blk=",
                      (long long)b->inner_blks[i], (char)('a' + b->inner_idxs[i]));
}

static int prepare_dnnl_matmul(engine_t *e, problem_t *p, char *msg, size_t ml) {
    const shape_t *s = p->s;
    matmul_state_t *ms = calloc(1, sizeof *ms);
    e->state = ms;
    dnnl_memory_desc_t src_md, wei_user_md, wei_any_md, dst_md;
    dnnl_dims_t a_dims = {s->M, s->K}, b_dims = {s->K, s->N}, c_dims = {s->M, s->N};
    /* A: (i,k) at i*K+k, or at k*M+i when transposed. */
    dnnl_dims_t a_str = {0, 0}, b_str = {0, 0};
    if (s->ta == 'T') { a_str[0] = 1; a_str[1] = s->M; }
    else { a_str[0] = s->K; a_str[1] = 1; }
    /* B: (k,n) at k*N+n, or at n*K+k when transposed. */
    if (s->tb == 'T') { b_str[0] = 1; b_str[1] = s->K; }
    else { b_str[0] = s->N; b_str[1] = 1; }
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&src_md, 2, a_dims, dnnl_f32, a_str), msg, ml);
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&wei_user_md, 2, b_dims, dnnl_f32, b_str), msg, ml);
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei_any_md, 2, b_dims, dnnl_f32, dnnl_format_tag_any), msg, ml);
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 2, c_dims, dnnl_f32, dnnl_ab), msg, ml);

    dnnl_matmul_desc_t md;
    DNNL_TRY(dnnl_matmul_desc_init(&md, &src_md, &wei_any_md, NULL, &dst_md), msg, ml);
    DNNL_TRY(dnnl_primitive_desc_create(&ms->pd, &md, NULL, g_dnnl_engine, NULL), msg, ml);
    const char *impl = NULL;
    dnnl_primitive_desc_query(ms->pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
    const dnnl_memory_desc_t *wei_md =
        dnnl_primitive_desc_query_md(ms->pd, dnnl_query_weights_md, 0);
    describe_md(wei_md, e->wfmt, sizeof e->wfmt);
    DNNL_TRY(dnnl_primitive_create(&ms->prim, ms->pd), msg, ml);

    DNNL_TRY(dnnl_memory_create(&ms->src, &src_md, g_dnnl_engine, (void *)p->A), msg, ml);
    DNNL_TRY(dnnl_memory_create(&ms->dst, &dst_md, g_dnnl_engine, p->C), msg, ml);
    DNNL_TRY(dnnl_memory_create(&ms->wei, wei_md, g_dnnl_engine, DNNL_MEMORY_ALLOCATE), msg, ml);

    /* One-off pack of B into the primitive's preferred layout. */
    dnnl_memory_t wei_user;
    DNNL_TRY(dnnl_memory_create(&wei_user, &wei_user_md, g_dnnl_engine, (void *)p->B), msg, ml);
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, &wei_user_md, g_dnnl_engine,
                                                wei_md, g_dnnl_engine, NULL), msg, ml);
    DNNL_TRY(dnnl_primitive_create(&reorder, rpd), msg, ml);
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wei_user}, {DNNL_ARG_TO, ms->wei}};
    /* First run includes JIT/first-touch; time the second. */
    DNNL_TRY(dnnl_primitive_execute(reorder, g_dnnl_stream, 2, rargs), msg, ml);
    DNNL_TRY(dnnl_stream_wait(g_dnnl_stream), msg, ml);
    double t0 = now_s();
    DNNL_TRY(dnnl_primitive_execute(reorder, g_dnnl_stream, 2, rargs), msg, ml);
    DNNL_TRY(dnnl_stream_wait(g_dnnl_stream), msg, ml);
    e->pack_ms = 1e3 * (now_s() - t0);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(wei_user);
    return 0;
}

static void run_dnnl_matmul(engine_t *e, problem_t *p) {
    (void)p;
    matmul_state_t *ms = e->state;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms->src},
                               {DNNL_ARG_WEIGHTS, ms->wei},
                               {DNNL_ARG_DST, ms->dst}};
    dnnl_status_t st = dnnl_primitive_execute(ms->prim, g_dnnl_stream, 3, args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(g_dnnl_stream);
    if (st != dnnl_success) {
        fprintf(stderr, "dnnl matmul execute failed: status %d\n", (int)st);
        exit(1);
    }
}

static void finish_dnnl_matmul(engine_t *e, problem_t *p) {
    (void)p;
    matmul_state_t *ms = e->state;
    if (!ms)
        return;
    if (ms->prim) dnnl_primitive_destroy(ms->prim);
    if (ms->pd) dnnl_primitive_desc_destroy(ms->pd);
    if (ms->src) dnnl_memory_destroy(ms->src);
    if (ms->wei) dnnl_memory_destroy(ms->wei);
    if (ms->dst) dnnl_memory_destroy(ms->dst);
    free(ms);
    e->state = NULL;
}

static void init_dnnl(engine_t *sg, engine_t *mm) {
    sg->name = "dnnl_sgemm";
    sg->run = run_dnnl_sgemm;
    mm->name = "dnnl_matmul";
    mm->prepare = prepare_dnnl_matmul;
    mm->run = run_dnnl_matmul;
    mm->finish = finish_dnnl_matmul;
    /* libgomp is loaded as a dependency of libdnnl; make sure it is 1 thread
     * even if OMP_NUM_THREADS was not set (the run script sets it). */
    void (*omp_set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (omp_set)
        omp_set(1);
    const char *omp_env = getenv("OMP_NUM_THREADS");
    if (!omp_env || strcmp(omp_env, "1") != 0)
        fprintf(stderr, "note: OMP_NUM_THREADS is not 1; forced via omp_set_num_threads%s\n",
                omp_set ? "" : " (NOT FOUND)");
    const dnnl_version_t *v = dnnl_version();
    const char *isa = dnnl_isa_name(dnnl_get_effective_cpu_isa());
    snprintf(sg->core, sizeof sg->core, "%s", isa);
    snprintf(mm->core, sizeof mm->core, "%s", isa);
    printf("# onednn: %d.%d.%d (%s); cpu runtime=%s; effective isa=%s\n",
           v->major, v->minor, v->patch, v->hash ? v->hash : "", 
           dnnl_runtime_name(v->cpu_runtime), isa);
    if (dnnl_engine_create(&g_dnnl_engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&g_dnnl_stream, g_dnnl_engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(mm->unavailable, sizeof mm->unavailable, "cannot create dnnl engine/stream");
    }
}
#endif /* NO_DNNL */

/* ------------------------------------------------------------- validation */

static float a_at(const problem_t *p, int i, int k) {
    return p->s->ta == 'T' ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k];
}
static float b_at(const problem_t *p, int k, int j) {
    return p->s->tb == 'T' ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
}

/* Max relative error of C on sampled entries against a double reference. */
static double ref_check(const problem_t *p, const float *C) {
    const shape_t *s = p->s;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    double worst = 0;
    for (int t = 0; t < 256; t++) {
        int i, j;
        if (t == 0) { i = 0; j = 0; }
        else if (t == 1) { i = s->M - 1; j = s->N - 1; }
        else {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            i = (int)((x >> 33) % (uint64_t)s->M);
            j = (int)((x >> 13) % (uint64_t)s->N);
        }
        double sum = 0, mag = 0;
        for (int k = 0; k < s->K; k++) {
            double prod = (double)a_at(p, i, k) * b_at(p, k, j);
            sum += prod;
            mag += fabs(prod);
        }
        double err = fabs(C[(size_t)i * p->ldc + j] - sum) / (mag > 0 ? mag : 1);
        if (!(err <= worst)) /* also catches NaN */
            worst = isnan(err) ? INFINITY : err;
    }
    return worst;
}

static double norm_diff(const float *x, const float *y, size_t n) {
    double dmax = 0, ymax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - y[i]);
        if (!(d <= dmax)) dmax = isnan(d) ? INFINITY : d;
        if (fabs(y[i]) > ymax) ymax = fabs(y[i]);
    }
    return dmax / (ymax > 0 ? ymax : 1);
}

/* -------------------------------------------------------------------- main */

static int in_list(const char *list, const char *name) {
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *q = list; *q;) {
        const char *comma = strchr(q, ',');
        size_t len = comma ? (size_t)(comma - q) : strlen(q);
        if (len == n && strncmp(q, name, n) == 0)
            return 1;
        if (!comma)
            break;
        q = comma + 1;
    }
    return 0;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--coretype NAME] [--time SEC] [--engines LIST] [--shapes LIST]\n"
            "  --coretype NAME  OPENBLAS_CORETYPE (Prescott, Haswell, SkylakeX, Cooperlake, Zen, ...)\n"
            "  --time SEC       timed seconds per (engine, shape), default 0.3\n"
            "  --engines LIST   subset of openblas,blis,dnnl_sgemm,dnnl_matmul\n"
            "  --shapes LIST    subset of shape indices 0..%d\n",
            argv0, NSHAPES - 1);
    exit(2);
}

int main(int argc, char **argv) {
    const char *coretype = NULL, *engines_sel = NULL, *shapes_sel = NULL;
    double target = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--coretype") && i + 1 < argc) coretype = argv[++i];
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) target = atof(argv[++i]);
        else if (!strcmp(argv[i], "--engines") && i + 1 < argc) engines_sel = argv[++i];
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) shapes_sel = argv[++i];
        else usage(argv[0]);
    }
    if (!(target > 0))
        usage(argv[0]);

    engine_t all[4];
    memset(all, 0, sizeof all);
    int ne = 0;
    if (in_list(engines_sel, "openblas")) load_openblas(&all[ne++], coretype);
    if (in_list(engines_sel, "blis")) load_blis(&all[ne++]);
#ifndef NO_DNNL
    {
        int want_sg = in_list(engines_sel, "dnnl_sgemm");
        int want_mm = in_list(engines_sel, "dnnl_matmul");
        if (want_sg || want_mm) {
            engine_t sg, mm;
            memset(&sg, 0, sizeof sg);
            memset(&mm, 0, sizeof mm);
            init_dnnl(&sg, &mm);
            if (want_sg) all[ne++] = sg;
            if (want_mm) all[ne++] = mm;
        }
    }
#else
    printf("# onednn: not compiled in (NO_DNNL)\n");
#endif
    for (int e = 0; e < ne; e++)
        if (all[e].unavailable[0])
            printf("engine=%s status=unavailable reason=\"%s\"\n", all[e].name,
                   all[e].unavailable);
    printf("# maxdiff: max|C-C_other|/max|C_other| over other engines; "
           "refdiff: sampled |C-ref|/sum|a*b| vs double reference\n");
    fflush(stdout);

    for (int si = 0; si < NSHAPES; si++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", si);
        if (!in_list(shapes_sel, idx))
            continue;
        const shape_t *s = &SHAPES[si];
        size_t asz = (size_t)s->M * s->K, bsz = (size_t)s->K * s->N, csz = (size_t)s->M * s->N;
        float *A = xalloc(asz * sizeof(float)), *B = xalloc(bsz * sizeof(float));
        uint64_t x = 12345 + si;
        for (size_t i = 0; i < asz; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            A[i] = (float)((double)(x >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        }
        for (size_t i = 0; i < bsz; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            B[i] = (float)((double)(x >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        }
        float *C[4] = {0};
        int ok[4] = {0};
        double gflops[4] = {0}, best[4] = {0}, refd[4] = {0};
        long reps[4] = {0};
        char err[4][200];
        double flop = 2.0 * s->M * s->N * s->K;

        for (int e = 0; e < ne; e++) {
            engine_t *en = &all[e];
            err[e][0] = 0;
            if (en->unavailable[0])
                continue;
            C[e] = xalloc(csz * sizeof(float));
            for (size_t i = 0; i < csz; i++)
                C[e][i] = NAN; /* so an engine that writes nothing is caught */
            problem_t p = {s, A, B, C[e], s->ta == 'T' ? s->M : s->K,
                           s->tb == 'T' ? s->K : s->N, s->N};
            en->pack_ms = 0;
            en->impl[0] = 0;
            en->wfmt[0] = 0;
            if (en->prepare && en->prepare(en, &p, err[e], sizeof err[e]) != 0) {
                if (en->finish) en->finish(en, &p);
                continue;
            }
            /* Warm-up: one untimed call (JIT, first touch), then at least 2
             * calls and ~min(0.05 s, target/3) to estimate the per-call time. */
            en->run(en, &p);
            double wtarget = target / 3 < 0.05 ? target / 3 : 0.05;
            long wn = 0;
            double t0 = now_s(), t;
            do {
                en->run(en, &p);
                wn++;
                t = now_s() - t0;
            } while (wn < 2 || t < wtarget);
            double per_call = t / wn;
            long seg = (long)ceil(target / 3 / per_call);
            if (seg < 1) seg = 1;
            double total = 0, fastest = INFINITY;
            for (int g = 0; g < 3; g++) {
                t0 = now_s();
                for (long r = 0; r < seg; r++)
                    en->run(en, &p);
                t = now_s() - t0;
                total += t;
                if (t < fastest) fastest = t;
            }
            reps[e] = 3 * seg;
            gflops[e] = flop * reps[e] / total * 1e-9;
            best[e] = flop * seg / fastest * 1e-9;
            refd[e] = ref_check(&p, C[e]);
            if (en->finish) en->finish(en, &p);
            ok[e] = 1;
        }

        for (int e = 0; e < ne; e++) {
            engine_t *en = &all[e];
            if (en->unavailable[0])
                continue;
            if (!ok[e]) {
                printf("engine=%s core=%s shape=%dx%dx%d trans=%c%c status=failed reason=\"%s\"\n",
                       en->name, en->core, s->M, s->N, s->K, s->ta, s->tb, err[e]);
                continue;
            }
            double md = 0;
            int others = 0;
            for (int f = 0; f < ne; f++) {
                if (f == e || !ok[f])
                    continue;
                double d = norm_diff(C[e], C[f], csz);
                if (!(d <= md)) md = d;
                others++;
            }
            printf("engine=%s core=%s shape=%dx%dx%d trans=%c%c gflops=%.2f maxdiff=",
                   en->name, en->core, s->M, s->N, s->K, s->ta, s->tb, gflops[e]);
            if (others) printf("%.2e", md);
            else printf("n/a");
            printf(" refdiff=%.2e best=%.2f reps=%ld", refd[e], best[e], reps[e]);
            if (en->impl[0])
                printf(" impl=%s pack_ms=%.3f packed_b=%s", en->impl, en->pack_ms, en->wfmt);
            if (refd[e] > 1e-4 || (others && md > 1e-3))
                printf(" WARNING=mismatch");
            printf("\n");
        }
        printf("# shape %d: %s\n", si, s->what);
        fflush(stdout);
        for (int e = 0; e < ne; e++)
            free(C[e]);
        free(A);
        free(B);
    }
    return 0;
}
