/*
 * core/simd_clones.h -- one plain C loop compiled for AVX-512, AVX2 and the baseline, the
 * version chosen per call by the CPU's features (for helpers that run once per query, where
 * the compiler's own vectorization is enough and a hand-written kernel is not worth it).
 *
 * This replaces GCC's target_clones: those dispatch through ifunc resolvers that the
 * dynamic loader runs before ThreadSanitizer's runtime is up, and the instrumented resolver
 * crashed every binary of the TSan build at load (SIGSEGV in quantize_w[resolver]).
 *
 * Usage: write `static inline QV_ALWAYS_INLINE ret name_impl(params)`, then
 * QV_CLONES(ret, name, (params), (args)) defines `static ret name(params)`. ret must not
 * be void (C forbids returning a void expression).
 */
#ifndef QV_CORE_SIMD_CLONES_H
#define QV_CORE_SIMD_CLONES_H

#define QV_ALWAYS_INLINE __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define QV_CLONES(ret, name, params, args)                                                \
    __attribute__((target("avx512f"))) static ret name##_avx512 params                    \
    {                                                                                     \
        return name##_impl args;                                                          \
    }                                                                                     \
    __attribute__((target("avx2"))) static ret name##_avx2 params { return name##_impl args; } \
    static ret name##_base params { return name##_impl args; }                            \
    static ret name params                                                                \
    {                                                                                     \
        if (__builtin_cpu_supports("avx512f")) return name##_avx512 args;                 \
        if (__builtin_cpu_supports("avx2")) return name##_avx2 args;                      \
        return name##_base args;                                                          \
    }
#else
#define QV_CLONES(ret, name, params, args) \
    static ret name params { return name##_impl args; }
#endif

#endif
