#include "RNNCPU.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rnn_cpu_info info;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static const char *feature_names[RNN_CPU_FEATURE_COUNT] = {
    "sse3", "ssse3", "sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c",
    "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"};

const char *rnn_cpu_feature_name(int i) {
    return (i >= 0 && i < RNN_CPU_FEATURE_COUNT) ? feature_names[i] : "";
}

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void read_info(void) {
    unsigned a, b, c, d;
    memset(&info, 0, sizeof info);
    unsigned max_leaf = 0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return;
    memcpy(info.vendor, &b, 4); memcpy(info.vendor + 4, &d, 4); memcpy(info.vendor + 8, &c, 4);
    info.vendor[12] = 0;

    unsigned ecx1 = 0;
    if (max_leaf >= 1) {
        __cpuid(1, a, b, c, d);
        ecx1 = c;
        int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
        info.stepping = a & 0xF;
        info.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
        info.model = (base_family == 6 || base_family == 0xF) ? base_model + (((a >> 16) & 0xF) << 4) : base_model;
    }
    /* Registers the operating system saves on a context switch: without its support the wider
       registers cannot be used even when CPUID lists the instructions. */
    int os_xsave = (ecx1 >> 27) & 1;
    unsigned long long xcr0 = os_xsave ? xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0;
    int amx_ok = (xcr0 & 0x60000) == 0x60000;

    unsigned f = 0;
    if (ecx1 & (1u << 0)) f |= RNN_CPU_SSE3;
    if (ecx1 & (1u << 9)) f |= RNN_CPU_SSSE3;
    if (ecx1 & (1u << 19)) f |= RNN_CPU_SSE41;
    if (ecx1 & (1u << 20)) f |= RNN_CPU_SSE42;
    if (ymm_ok) {
        if (ecx1 & (1u << 28)) f |= RNN_CPU_AVX;
        if (ecx1 & (1u << 12)) f |= RNN_CPU_FMA;
        if (ecx1 & (1u << 29)) f |= RNN_CPU_F16C;
    }
    if (max_leaf >= 7) {
        unsigned b7, c7, d7, a71 = 0;
        __cpuid_count(7, 0, a, b7, c7, d7);
        unsigned subleaves = a;
        if (subleaves >= 1) { __cpuid_count(7, 1, a71, b, c, d); }
        if (ymm_ok && (b7 & (1u << 5))) f |= RNN_CPU_AVX2;
        if (zmm_ok) {
            if (b7 & (1u << 16)) f |= RNN_CPU_AVX512F;
            if (b7 & (1u << 17)) f |= RNN_CPU_AVX512DQ;
            if (b7 & (1u << 28)) f |= RNN_CPU_AVX512CD;
            if (b7 & (1u << 30)) f |= RNN_CPU_AVX512BW;
            if (b7 & (1u << 31)) f |= RNN_CPU_AVX512VL;
            if (c7 & (1u << 11)) f |= RNN_CPU_AVX512_VNNI;
            if (d7 & (1u << 23)) f |= RNN_CPU_AVX512_FP16;
            if (a71 & (1u << 5)) f |= RNN_CPU_AVX512_BF16;
        }
        if (amx_ok) {
            if (d7 & (1u << 24)) f |= RNN_CPU_AMX_TILE;
            if (d7 & (1u << 22)) f |= RNN_CPU_AMX_BF16;
        }
    }
    info.features = f;

    unsigned max_ext = __get_cpuid_max(0x80000000u, 0);
    if (max_ext >= 0x80000004u) {
        unsigned regs[12];
        for (unsigned i = 0; i < 3; i++) __cpuid(0x80000002u + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
        memcpy(info.brand, regs, 48);
        info.brand[48] = 0;
        /* trim leading and trailing blanks */
        char *s = info.brand;
        while (*s == ' ') s++;
        memmove(info.brand, s, strlen(s) + 1);
        size_t n = strlen(info.brand);
        while (n > 0 && info.brand[n - 1] == ' ') info.brand[--n] = 0;
    }
}
#else
static void read_info(void) { memset(&info, 0, sizeof info); }
#endif

const rnn_cpu_info *rnn_cpu(void) {
    pthread_once(&info_once, read_info);
    return &info;
}

static const unsigned avx2_bits = RNN_CPU_AVX2 | RNN_CPU_FMA;
static const unsigned avx512_bits = RNN_CPU_AVX512F | RNN_CPU_AVX512BW | RNN_CPU_AVX512VL | RNN_CPU_AVX512DQ;

int rnn_isa_supported(void) {
    unsigned f = rnn_cpu()->features;
    if ((f & avx2_bits) != avx2_bits) return RNN_ISA_GENERIC;
    if ((f & avx512_bits) != avx512_bits) return RNN_ISA_AVX2;
    return RNN_ISA_AVX512;
}

static int cap = -1;
static pthread_once_t cap_once = PTHREAD_ONCE_INIT;

static void read_cap(void) {
    const char *v = getenv("RNN_ISA");
    if (!v || !*v) { cap = -1; return; }
    if (!strcmp(v, "generic")) cap = RNN_ISA_GENERIC;
    else if (!strcmp(v, "avx2")) cap = RNN_ISA_AVX2;
    else if (!strcmp(v, "avx512")) cap = RNN_ISA_AVX512;
    else {
        fprintf(stderr, "RNN_ISA: unknown instruction-set level '%s' (use generic, avx2 or avx512)\n", v);
        exit(2);
    }
}

int rnn_isa_cap(void) {
    pthread_once(&cap_once, read_cap);
    return cap;
}

int rnn_isa(void) {
    int s = rnn_isa_supported(), c = rnn_isa_cap();
    return (c >= 0 && c < s) ? c : s;
}

const char *rnn_isa_name(int level) {
    switch (level) {
    case RNN_ISA_AVX512: return "avx512";
    case RNN_ISA_AVX2: return "avx2";
    default: return "generic";
    }
}

unsigned rnn_cpu_features_at(int level) {
    unsigned f = rnn_cpu()->features;
    if (level < RNN_ISA_AVX512)
        f &= ~(unsigned)(RNN_CPU_AVX512F | RNN_CPU_AVX512DQ | RNN_CPU_AVX512CD | RNN_CPU_AVX512BW | RNN_CPU_AVX512VL |
                         RNN_CPU_AVX512_VNNI | RNN_CPU_AVX512_BF16 | RNN_CPU_AVX512_FP16 | RNN_CPU_AMX_TILE | RNN_CPU_AMX_BF16);
    if (level < RNN_ISA_AVX2) f &= ~(unsigned)(RNN_CPU_AVX | RNN_CPU_AVX2 | RNN_CPU_FMA | RNN_CPU_F16C);
    return f;
}

#if defined(RNN_REQUIRE_AVX2) && defined(__x86_64__)
/* Release builds compile the Swift numeric code for AVX2 + FMA (Haswell and newer); on an older
   processor they would die of an illegal instruction somewhere inside the first kernel. Say so
   in one line at start-up instead. */
__attribute__((constructor(101))) static void require_avx2(void) {
    if (rnn_isa_supported() < RNN_ISA_AVX2) {
        fprintf(stderr, "this build needs a processor with AVX2 and FMA (Haswell, Zen or newer); "
                        "build with 'swift build -c debug' or without '-target-cpu haswell' in Package.swift\n");
        exit(1);
    }
}
#endif
