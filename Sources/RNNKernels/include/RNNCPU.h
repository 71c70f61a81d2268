#ifndef RNN_CPU_H
#define RNN_CPU_H
/* What this processor can run, read from CPUID (and XGETBV, so the operating system's support for
   the wider registers counts too), never from a table of model numbers; and the instruction-set
   level the suite uses: the best level the processor supports, capped by the environment
   variable RNN_ISA=generic|avx2|avx512 so that the lower paths can be run on any machine. */

/* Feature bits of rnn_cpu_info.features. */
enum {
    RNN_CPU_SSE3 = 1 << 0, RNN_CPU_SSSE3 = 1 << 1, RNN_CPU_SSE41 = 1 << 2, RNN_CPU_SSE42 = 1 << 3,
    RNN_CPU_AVX = 1 << 4, RNN_CPU_AVX2 = 1 << 5, RNN_CPU_FMA = 1 << 6, RNN_CPU_F16C = 1 << 7,
    RNN_CPU_AVX512F = 1 << 8, RNN_CPU_AVX512DQ = 1 << 9, RNN_CPU_AVX512CD = 1 << 10,
    RNN_CPU_AVX512BW = 1 << 11, RNN_CPU_AVX512VL = 1 << 12, RNN_CPU_AVX512_VNNI = 1 << 13,
    RNN_CPU_AVX512_BF16 = 1 << 14, RNN_CPU_AVX512_FP16 = 1 << 15,
    RNN_CPU_AMX_TILE = 1 << 16, RNN_CPU_AMX_BF16 = 1 << 17
};
/* Number of feature bits above (for listing them by name). */
#define RNN_CPU_FEATURE_COUNT 18

/* Instruction-set levels, ordered. avx2 = AVX2 + FMA; avx512 = AVX-512 F, BW, VL and DQ. */
enum { RNN_ISA_GENERIC = 0, RNN_ISA_AVX2 = 1, RNN_ISA_AVX512 = 2 };

typedef struct {
    char vendor[13];      /* "GenuineIntel", "AuthenticAMD", ... ("" off x86-64) */
    char brand[49];       /* CPUID brand string, trimmed */
    int family, model, stepping;  /* display family and model, as the kernel's /proc/cpuinfo */
    unsigned features;    /* RNN_CPU_* bits usable on this processor and operating system */
} rnn_cpu_info;

/* The processor this process runs on (read once). */
const rnn_cpu_info *rnn_cpu(void);

/* Name of feature bit i (0 <= i < RNN_CPU_FEATURE_COUNT), e.g. "avx512_bf16". */
const char *rnn_cpu_feature_name(int i);

/* Best level the processor supports. */
int rnn_isa_supported(void);

/* The cap from RNN_ISA, or -1 when it is unset. An unknown value makes the process print one
   line naming it and exit with status 2 (at start-up, when the BLAS library is loaded). */
int rnn_isa_cap(void);

/* Level in use: min(rnn_isa_supported(), cap). */
int rnn_isa(void);

/* "generic", "avx2" or "avx512". */
const char *rnn_isa_name(int level);

/* Features usable at the given level: the processor's, less everything above the level. */
unsigned rnn_cpu_features_at(int level);

#endif
