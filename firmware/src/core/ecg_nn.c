#include "ecg/ecg_nn.h"

#include <math.h>
#include <string.h>

/*
 * Integer conventions.
 *
 * The TFLM reference kernels rely on two's-complement wrap-around and on arithmetic right shifts
 * of negative values. C99 leaves the latter implementation-defined (every compiler this project
 * targets shifts arithmetically; the checks below stop the build otherwise) and makes signed
 * overflow undefined, so the few places where TFLM's int32 arithmetic could in principle wrap go
 * through uint32_t here (same bits, defined behaviour).
 */
typedef char ecg_nn_asr32_check[((int32_t)-1 >> 1) == -1 ? 1 : -1];
typedef char ecg_nn_asr64_check[((int64_t)-1 >> 1) == -1 ? 1 : -1];

#ifndef ECG_HAVE_DSP
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define ECG_HAVE_DSP 1
#else
#define ECG_HAVE_DSP 0
#endif
#endif

/* ECG_NN_DSP_EMULATE (tests only): build the DSP code path with C models of the five Armv7E-M
 * instructions it uses (SXTB16, SMLAD, SMMULR, SSAT, LDR), so that the host can check that path
 * bit for bit against TFLM on many inputs; tests/test_classifier_c.py does. */
#if ECG_HAVE_DSP && !defined(ECG_NN_DSP_EMULATE) && !(defined(__arm__) || defined(__thumb__))
#error "ECG_HAVE_DSP needs an Arm target (or ECG_NN_DSP_EMULATE for a host test build)"
#endif

/* Inlining that the specialised kernels rely on (constant depths unrolled into the caller). */
#if defined(__GNUC__)
#define ECG_NN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ECG_NN_ALWAYS_INLINE inline
#endif

#define Q31_ONE_MINUS 0x7FFFFFFF /* largest Q0.31 value, gemmlowp's FixedPoint<int32, 0>::One() */

static inline int32_t wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* x * 2^e without undefined behaviour (wraps like TFLM's int32 code would), 0 <= e <= 31. */
static inline int32_t shl(int32_t x, int32_t e)
{
    return (int32_t)((uint32_t)x << (uint32_t)e);
}

static inline int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/*
 * gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31). gemmlowp adds a nudge of
 * +2^30 (product >= 0) or 1 - 2^30 (product < 0) and divides by 2^31 truncating toward zero;
 * both cases equal floor((a * b + 2^30) / 2^31), i.e. round to nearest with ties toward +inf,
 * which is one add and one arithmetic shift (no 64-bit division on the target).
 * The only overflow, INT32_MIN * INT32_MIN, saturates to INT32_MAX.
 */
static inline int32_t srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/*
 * srdhm() for the kernels: a non-negative multiplier b and |a| < 2^30. With the DSP extension
 * this is one SMMULR on 2a: floor((2a b + 2^31) / 2^32) = floor((a b + 2^30) / 2^31), the same
 * integer, without the 64-bit add and shifts.
 */
static inline int32_t srdhm_pos(int32_t a, int32_t b)
{
#if ECG_HAVE_DSP && !defined(ECG_NN_DSP_EMULATE)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"((int32_t)((uint32_t)a << 1)), "r"(b));
    return r;
#elif ECG_HAVE_DSP /* SMMULR: high word of the 64-bit product, rounded (+2^31) */
    return (int32_t)(((int64_t)(int32_t)((uint32_t)a << 1) * b + ((int64_t)1 << 31)) >> 32);
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
#endif
}

/*
 * gemmlowp RoundingDivideByPOT: round(x / 2^e) with ties away from zero, 0 <= e <= 31:
 * floor shift, plus one when the remainder exceeds half (half minus one for negative x).
 */
static inline int32_t rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier(int32_t, int32_t, int), double rounding; any int32 x. */
static int32_t requant_exact(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        return srdhm(shl(x, shift), multiplier);
    }
    return rdbpot(srdhm(x, multiplier), -shift);
}

int32_t ecg_requant(int32_t x, int32_t multiplier, int32_t shift)
{
    return requant_exact(x, multiplier, shift);
}

/*
 * The kernels' requantization: the same two roundings, for |x * 2^max(shift, 0)| < 2^30 (int8
 * products summed over fewer than 2^15 terms, ADD's 2^20-scaled inputs, ...) and a multiplier
 * below 2^31. Then the high multiply's result t has |t| < 2^30 and the rounding shift can add
 * its half unit directly: round(t / 2^e) ties away from zero = (t + 2^(e-1) - (t < 0)) >> e,
 * three instructions instead of rdbpot()'s mask-and-compare.
 */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t requant_left(int32_t x, int32_t multiplier, int32_t shift)
{
    return srdhm(shl(x, shift), multiplier);
}

static inline int32_t requant(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t t;
    if (shift > 0) { /* rare (multipliers above 1): out of line, the general form */
        return requant_left(x, multiplier, shift);
    }
    t = srdhm_pos(x, multiplier);
    if (shift < 0) {
        const int32_t e = -shift;
        t = (t + (1 << (e - 1)) - (t < 0 ? 1 : 0)) >> e;
    }
    return t;
}

ecg_err_t ecg_nn_quantize_multiplier(double real_multiplier, ecg_nn_quant_t *q)
{
    int exponent = 0;
    double significand;
    double scaled;
    int64_t q_fixed;
    if (q == NULL) {
        return ECG_ERR_NULL;
    }
    if (!(real_multiplier >= 0.0) || !(real_multiplier < 2147483648.0)) {
        return ECG_ERR_RANGE; /* negative, NaN, infinite, or a shift beyond 30 */
    }
    if (real_multiplier == 0.0) {
        q->multiplier = 0;
        q->shift = 0;
        return ECG_OK;
    }
    significand = frexp(real_multiplier, &exponent); /* [0.5, 1) */
    scaled = significand * 2147483648.0;             /* exact: a power-of-two scaling */
    q_fixed = (int64_t)floor(scaled + 0.5);          /* std::round: half away from zero (>0) */
    if (q_fixed == ((int64_t)1 << 31)) {
        q_fixed /= 2;
        exponent++;
    }
    if (exponent < -31) {
        exponent = 0;
        q_fixed = 0;
    }
    q->multiplier = (int32_t)q_fixed;
    q->shift = (int32_t)exponent;
    return ECG_OK;
}

/* A multiplier <= 1 (shift <= 0) with its rounding constants, for the element-wise loops:
 * requant(x) = (t + half + (t < 0 ? -1 : 0 when e > 0)) >> e, t = srdhm(x, multiplier). */
typedef struct {
    int32_t multiplier;
    int32_t e;        /* right shift, 0..31 */
    int32_t half;     /* 2^(e-1), or 0 when e == 0 */
    int32_t neg_mask; /* -1 when e > 0 (ties of negative values round down), else 0 */
} rshift_t;

static inline rshift_t rshift_make(const ecg_nn_quant_t *q)
{
    rshift_t r;
    r.multiplier = q->multiplier;
    r.e = -q->shift;
    r.half = r.e > 0 ? (1 << (r.e - 1)) : 0;
    r.neg_mask = r.e > 0 ? -1 : 0;
    return r;
}

/* requant() for shift <= 0 without branches; same precondition |x| < 2^30. */
static inline int32_t rshift_apply(int32_t x, const rshift_t *r)
{
    const int32_t t = srdhm_pos(x, r->multiplier);
    return (t + r->half + ((t >> 31) & r->neg_mask)) >> r->e;
}

/* Clamp to [lo, hi] within int8; full_range: [-128, 127], a single SSAT on Armv7-M. */
static inline int8_t clamp_s8(int32_t v, int full_range, int32_t lo, int32_t hi)
{
    if (full_range) {
#if ECG_HAVE_DSP && !defined(ECG_NN_DSP_EMULATE)
        int32_t r;
        __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
        return (int8_t)r;
#else
        return (int8_t)clamp32(v, -128, 127);
#endif
    }
    return (int8_t)clamp32(v, lo, hi);
}

/* ------------------------------------------------------------------------------------------ */
/* Dot products                                                                                 */

#if ECG_HAVE_DSP
static inline uint32_t load_u32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* an unaligned LDR on Armv7-M */
    return v;
}
#endif

#if ECG_HAVE_DSP && !defined(ECG_NN_DSP_EMULATE)
/* Armv7E-M: two signed 8-bit lanes widened to 16 bits, then dual 16x16 multiply-accumulate. */
static inline uint32_t sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* Four bytes, as the memory operand of the asm below (any alignment: Armv7-M LDR allows it). */
typedef struct {
    int8_t b[4];
} s8x4_t;

/* acc + w[0] x[0] + w[1] x[1] + w[2] x[2] + w[3] x[3], x pre-extended (xe: x0, x2; xo: x1, x3).
 * One asm block with its load, so that the compiler cannot hoist the loads of a whole unrolled
 * row ahead of the multiplies (which spills them on a 13-register machine). */
static inline int32_t mac4_mem(int32_t acc, const int8_t *w, uint32_t xe, uint32_t xo)
{
    uint32_t t0, t1;
    __asm__("ldr %[t1], %[w]\n\t"
            "sxtb16 %[t0], %[t1]\n\t"
            "sxtb16 %[t1], %[t1], ror #8\n\t"
            "smlad %[acc], %[t0], %[xe], %[acc]\n\t"
            "smlad %[acc], %[t1], %[xo], %[acc]"
            : [acc] "+r"(acc), [t0] "=&r"(t0), [t1] "=&r"(t1)
            : [w] "m"(*(const s8x4_t *)(const void *)w), [xe] "r"(xe), [xo] "r"(xo));
    return acc;
}
#elif ECG_HAVE_DSP /* C models of the instructions, for ECG_NN_DSP_EMULATE host builds */
static inline uint32_t sxtb16(uint32_t x)
{
    const uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xFFu);
    const uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}

static inline uint32_t sxtb16_ror8(uint32_t x)
{
    return sxtb16((x >> 8) | (x << 24));
}

static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    const int32_t lo = (int32_t)(int16_t)(uint16_t)(a & 0xFFFFu) *
                       (int32_t)(int16_t)(uint16_t)(b & 0xFFFFu);
    const int32_t hi = (int32_t)(int16_t)(uint16_t)(a >> 16) * (int32_t)(int16_t)(uint16_t)(b >> 16);
    return wrap_add(wrap_add(acc, lo), hi);
}

static inline int32_t mac4_mem(int32_t acc, const int8_t *w, uint32_t xe, uint32_t xo)
{
    const uint32_t v = load_u32(w);
    return smlad(sxtb16_ror8(v), xo, smlad(sxtb16(v), xe, acc));
}
#endif

/* sum_i a[i] * b[i] over n int8 pairs, exact in int32 for n < 2^17. */
static int32_t dot_s8(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t acc = 0;
    uint32_t i = 0;
#if ECG_HAVE_DSP
    for (; i + 4u <= n; i += 4u) {
        const uint32_t va = load_u32(a + i);
        const uint32_t vb = load_u32(b + i);
        acc = smlad(sxtb16(va), sxtb16(vb), acc);           /* lanes 0 and 2 */
        acc = smlad(sxtb16_ror8(va), sxtb16_ror8(vb), acc); /* lanes 1 and 3 */
    }
#endif
    for (; i < n; i++) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* Two dot products sharing the right operand: *a0 += sum w0[i] x[i], *a1 += sum w1[i] x[i].
 * Inlined with a constant n (8, 16, 32 below), the block loop is straight-line code. */
#if ECG_HAVE_DSP
/* 4 elements of both products at byte offset k: 3 loads, 6 SXTB16, 4 SMLAD (8 MACs). */
#define DOT2_QUAD(k)                                                                              \
    do {                                                                                          \
        const uint32_t vx_ = load_u32(x + (k)), v0_ = load_u32(w0 + (k)), v1_ = load_u32(w1 + (k)); \
        const uint32_t xe_ = sxtb16(vx_), xo_ = sxtb16_ror8(vx_);                                \
        acc0 = smlad(sxtb16(v0_), xe_, acc0);                                                    \
        acc0 = smlad(sxtb16_ror8(v0_), xo_, acc0);                                               \
        acc1 = smlad(sxtb16(v1_), xe_, acc1);                                                    \
        acc1 = smlad(sxtb16_ror8(v1_), xo_, acc1);                                               \
    } while (0)
#endif

static ECG_NN_ALWAYS_INLINE void dot2_s8(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                         uint32_t n, int32_t *a0, int32_t *a1)
{
    int32_t acc0 = *a0, acc1 = *a1;
#if ECG_HAVE_DSP
    if (n == 8u || n == 16u || n == 32u) { /* constant after inlining: no loop at all */
        DOT2_QUAD(0);
        DOT2_QUAD(4);
        if (n >= 16u) {
            DOT2_QUAD(8);
            DOT2_QUAD(12);
        }
        if (n >= 32u) {
            DOT2_QUAD(16);
            DOT2_QUAD(20);
            DOT2_QUAD(24);
            DOT2_QUAD(28);
        }
        *a0 = acc0;
        *a1 = acc1;
        return;
    }
    {
        uint32_t k;
        for (k = n >> 3; k != 0u; k--) { /* 8 elements, 16 MACs */
            DOT2_QUAD(0);
            DOT2_QUAD(4);
            x += 8;
            w0 += 8;
            w1 += 8;
        }
    }
    n &= 7u;
    if (n >= 4u) {
        DOT2_QUAD(0);
        x += 4;
        w0 += 4;
        w1 += 4;
        n -= 4u;
    }
#endif
    while (n-- != 0u) {
        const int32_t xv = *x++;
        acc0 += (int32_t)*w0++ * xv;
        acc1 += (int32_t)*w1++ * xv;
    }
    *a0 = acc0;
    *a1 = acc1;
}

static int32_t sum_s8(const int8_t *a, uint32_t n)
{
    int32_t s = 0;
    uint32_t i;
    for (i = 0; i < n; i++) {
        s += a[i];
    }
    return s;
}

/* sum_i (w[i] + w_off) * (x[i] + x_off), the general TFLM form. */
static int32_t dot_s8_offsets(const int8_t *w, int32_t w_off, const int8_t *x, int32_t x_off,
                              uint32_t n)
{
    int32_t acc = 0;
    uint32_t i;
    if (w_off == 0 && x_off == 0) {
        return dot_s8(w, x, n);
    }
    if (w_off == 0) {
        /* sum w * (x + x_off) = sum w * x + x_off * sum w: same integer, fewer operations */
        int32_t wsum = 0;
        for (i = 0; i < n; i++) {
            wsum += w[i];
        }
        return dot_s8(w, x, n) + x_off * wsum;
    }
    for (i = 0; i < n; i++) {
        acc += ((int32_t)w[i] + w_off) * ((int32_t)x[i] + x_off);
    }
    return acc;
}

/* ------------------------------------------------------------------------------------------ */
/* Fully connected                                                                              */

/* The output stage shared by the matrix kernels: requantize, offset, clamp. */
static inline int8_t out_s8(int32_t acc, const ecg_nn_quant_t *q, int32_t offset, int full,
                            int32_t lo, int32_t hi)
{
    return clamp_s8(requant(acc, q->multiplier, q->shift) + offset, full, lo, hi);
}

/* Longest vector the matrix-vector fast path sign-extends on the stack (bytes of stack: 2n). */
#define MV_MAX_DEPTH 64u

#if ECG_HAVE_DSP
/* 4 elements of 4 dot products: x pre-extended in xx (lanes 0,2 then 1,3), rows w0..w3. */
#define MV4_QUAD(q)                                                                               \
    do {                                                                                          \
        const uint32_t xe_ = xx[2 * (q)], xo_ = xx[2 * (q) + 1];                                  \
        a0 = mac4_mem(a0, w0 + 4 * (q), xe_, xo_);                                                 \
        a1 = mac4_mem(a1, w1 + 4 * (q), xe_, xo_);                                                 \
        a2 = mac4_mem(a2, w2 + 4 * (q), xe_, xo_);                                                 \
        a3 = mac4_mem(a3, w3 + 4 * (q), xe_, xo_);                                                 \
    } while (0)
#endif

/* Outputs the matrix-vector core accumulates before requantizing them (stack: 4 bytes each). */
#define MV_MAX_OUT 64u

/* 2^(e-1) for a right shift e = 1..31 (entry 0 unused). */
static const int32_t k_round_half[32] = {
    0,         1,         2,         4,         8,          16,         32,         64,
    128,       256,       512,       1024,      2048,       4096,       8192,       16384,
    32768,     65536,     131072,    262144,    524288,     1048576,    2097152,    4194304,
    8388608,   16777216,  33554432,  67108864,  134217728,  268435456,  536870912,  1073741824};

/* y[o] = clamp(requant(acc[o], quant[o * qstep]) + y_off) for o < m. all_neg: every shift of
 * quant[0..m) is negative (a right shift of at least 1), so the rounding needs no branch. */
static void requant_row(const int32_t *acc, uint32_t m, const ecg_nn_quant_t *quant,
                        uint32_t qstep, int32_t y_off, int full, int32_t lo, int32_t hi,
                        int all_neg, int8_t *y)
{
    uint32_t o;
    if (full && qstep == 1u && all_neg) { /* per-channel, right shifts only */
        for (o = 0; o < m; o++) {
            const int32_t e = -quant[o].shift;
            const int32_t t = srdhm_pos(acc[o], quant[o].multiplier);
            y[o] = clamp_s8(((t + (t >> 31) + k_round_half[e]) >> e) + y_off, 1, -128, 127);
        }
    } else if (full && qstep == 0u && quant->shift <= 0) { /* per-tensor: constants hoisted */
        const rshift_t r = rshift_make(quant);
        for (o = 0; o < m; o++) {
            y[o] = clamp_s8(rshift_apply(acc[o], &r) + y_off, 1, -128, 127);
        }
    } else if (full) {
        for (o = 0; o < m; o++) {
            const ecg_nn_quant_t *q = &quant[o * qstep];
            y[o] = clamp_s8(requant(acc[o], q->multiplier, q->shift) + y_off, 1, -128, 127);
        }
    } else {
        for (o = 0; o < m; o++) {
            const ecg_nn_quant_t *q = &quant[o * qstep];
            y[o] = clamp_s8(requant(acc[o], q->multiplier, q->shift) + y_off, 0, lo, hi);
        }
    }
}

/* acc[o] = bias[o] + add + sum_i w[o * ws + i] x[i], o < m <= MV_MAX_OUT. With the DSP extension
 * and n a multiple of 4 up to MV_MAX_DEPTH, x is sign-extended once (as CMSIS-NN does) and four
 * rows share it: per 16 multiply-accumulates 4 word loads, 8 SXTB16 and 8 SMLAD; depths 16 and
 * 32 are straight-line code. */
static void matvec_acc(const int8_t *x, uint32_t n, const int8_t *w, uint32_t ws, uint32_t m,
                       const int32_t *bias, int32_t add, int32_t *acc)
{
    uint32_t o = 0;
#if ECG_HAVE_DSP
    if ((n & 3u) == 0u && n <= MV_MAX_DEPTH) {
        uint32_t xx[MV_MAX_DEPTH / 2];
        const uint32_t nq = n >> 2;
        uint32_t q;
        for (q = 0; q < nq; q++) {
            const uint32_t v = load_u32(x + 4u * q);
            xx[2u * q] = sxtb16(v);
            xx[2u * q + 1u] = sxtb16_ror8(v);
        }
        const int8_t *w0 = w;
        const int32_t *bp = bias;
        int32_t *ap = acc;
        uint32_t g;
        for (g = m >> 2; g != 0u; g--) {
            const int8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
            int32_t a0 = add, a1 = add, a2 = add, a3 = add;
            if (bp != NULL) {
                a0 += bp[0];
                a1 += bp[1];
                a2 += bp[2];
                a3 += bp[3];
                bp += 4;
            }
            if (nq == 4u) { /* depth 16 */
                MV4_QUAD(0);
                MV4_QUAD(1);
                MV4_QUAD(2);
                MV4_QUAD(3);
            } else {
                for (q = 0; q < nq; q++) {
                    MV4_QUAD(q);
                }
            }
            ap[0] = a0;
            ap[1] = a1;
            ap[2] = a2;
            ap[3] = a3;
            ap += 4;
            w0 = w3 + ws;
        }
        o = m & ~3u;
    }
#endif
    for (; o < m; o++) {
        acc[o] = add + (bias != NULL ? bias[o] : 0) + dot_s8(w + o * ws, x, n);
    }
}

/*
 * The matrix kernels' core, one matrix-vector product with the output stage:
 *     y[o] = clamp(requant(bias[o] + add + sum_i w[o * ws + i] x[i], quant[o * qstep]) + y_off)
 * for o < m, in chunks of MV_MAX_OUT outputs: multiply-accumulate, then requantize.
 */
static void matvec_s8(const int8_t *x, uint32_t n, const int8_t *w, uint32_t ws, uint32_t m,
                      const int32_t *bias, int32_t add, const ecg_nn_quant_t *quant,
                      uint32_t qstep, int32_t y_off, int full, int32_t lo, int32_t hi,
                      int all_neg, int8_t *y)
{
    int32_t acc[MV_MAX_OUT];
    uint32_t o0;
    for (o0 = 0; o0 < m; o0 += MV_MAX_OUT) {
        const uint32_t mc = m - o0 < MV_MAX_OUT ? m - o0 : MV_MAX_OUT;
        matvec_acc(x, n, w + o0 * ws, ws, mc, bias != NULL ? bias + o0 : NULL, add, acc);
        requant_row(acc, mc, quant + o0 * qstep, qstep, y_off, full, lo, hi, all_neg, y + o0);
    }
}

ecg_err_t ecg_nn_fully_connected_s8(const ecg_nn_fc_params_t *p, const int8_t *input,
                                    int8_t *output)
{
    /* parameters in locals: the int8 stores below may alias anything, so the compiler would
     * otherwise reload every field after each of them */
    uint32_t batches, n, out_len, b, o, qstep;
    const int8_t *weights;
    const int32_t *bias;
    const ecg_nn_quant_t *quant;
    int32_t x_off, w_off, y_off, lo, hi;
    int full;
    if (p == NULL || input == NULL || output == NULL || p->weights == NULL || p->quant == NULL) {
        return ECG_ERR_NULL;
    }
    batches = p->batches;
    n = p->in_len;
    out_len = p->out_len;
    weights = p->weights;
    bias = p->bias;
    quant = p->quant;
    x_off = p->input_offset;
    w_off = p->weights_offset;
    y_off = p->output_offset;
    lo = p->act_min;
    hi = p->act_max;
    full = lo <= -128 && hi >= 127;
    qstep = p->per_channel ? 1u : 0u;
    if (w_off == 0 && x_off == 0) { /* the generator folds the input offset into the bias */
        int all_neg = 1;
        for (o = 0; o < (qstep != 0u ? out_len : 1u); o++) {
            all_neg = all_neg && quant[o].shift < 0;
        }
        for (b = 0; b < batches; b++) {
            matvec_s8(input + (size_t)b * n, n, weights, n, out_len, bias, 0, quant, qstep, y_off,
                      full, lo, hi, all_neg, output + (size_t)b * out_len);
        }
        return ECG_OK;
    }
    for (b = 0; b < batches; b++) { /* TFLM's general form (e.g. the classifier head) */
        const int8_t *x = input + (size_t)b * n;
        for (o = 0; o < out_len; o++) {
            int32_t acc = dot_s8_offsets(weights + (size_t)o * n, w_off, x, x_off, n);
            if (bias != NULL) {
                acc += bias[o];
            }
            *output++ = out_s8(acc, &quant[o * qstep], y_off, full, lo, hi);
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Batched matrix product                                                                       */

static size_t align_up(size_t n)
{
    return (n + (ECG_NN_ARENA_ALIGN - 1u)) & ~(size_t)(ECG_NN_ARENA_ALIGN - 1u);
}

size_t ecg_nn_batch_matmul_s8_scratch_bytes(const ecg_nn_bmm_params_t *p)
{
    size_t n = 0;
    if (p == NULL) {
        return 0;
    }
    if (p->lhs_offset != 0) {
        n += (size_t)p->cols * sizeof(int32_t); /* column sums of rhs */
    }
    if (p->rhs_k_stride != 1u) {
        n += align_up((size_t)p->cols * p->depth); /* rhs gathered [cols][depth] */
    }
    if (p->lhs_k_stride != 1u) {
        n += align_up((size_t)p->rows * p->depth); /* lhs gathered [rows][depth] */
    }
    return n;
}

/* dst[i][k] = src[i * stride_i + k * stride_k], i < n_i, k < n_k */
static void gather(int8_t *dst, const int8_t *src, uint32_t n_i, uint32_t stride_i, uint32_t n_k,
                   uint32_t stride_k)
{
    uint32_t i, k;
    for (i = 0; i < n_i; i++) {
        const int8_t *s = src + i * stride_i;
        for (k = 0; k < n_k; k++) {
            *dst++ = s[k * stride_k];
        }
    }
}

ecg_err_t ecg_nn_batch_matmul_s8(const ecg_nn_bmm_params_t *p, const int8_t *lhs,
                                 const int8_t *rhs, int8_t *out, int8_t *scratch)
{
    uint32_t b0, b1, b2, r, c;
    uint32_t rows, cols, depth, lrs, rcs;
    int32_t lo_off, ro_off, y_off, nlr;
    int32_t *colbias = NULL;
    int8_t *rpack = NULL, *lpack = NULL;
    ecg_nn_quant_t q;
    if (p == NULL || lhs == NULL || rhs == NULL || out == NULL ||
        (scratch == NULL && ecg_nn_batch_matmul_s8_scratch_bytes(p) > 0u)) {
        return ECG_ERR_NULL;
    }
    rows = p->rows;
    cols = p->cols;
    depth = p->depth;
    lo_off = p->lhs_offset;
    ro_off = p->rhs_offset;
    y_off = p->output_offset;
    q = p->quant;
    nlr = (int32_t)depth * lo_off * ro_off;
    if (lo_off != 0) {
        colbias = (int32_t *)(void *)scratch;
        scratch += (size_t)cols * sizeof(int32_t);
    }
    if (p->rhs_k_stride != 1u) {
        rpack = scratch;
        scratch += align_up((size_t)cols * depth);
    }
    if (p->lhs_k_stride != 1u) {
        lpack = scratch;
    }
    for (b0 = 0; b0 < p->batch[0]; b0++) {
        for (b1 = 0; b1 < p->batch[1]; b1++) {
            for (b2 = 0; b2 < p->batch[2]; b2++) {
                const int8_t *l = lhs + b0 * p->lhs_batch_stride[0] +
                                  b1 * p->lhs_batch_stride[1] + b2 * p->lhs_batch_stride[2];
                const int8_t *rr = rhs + b0 * p->rhs_batch_stride[0] +
                                   b1 * p->rhs_batch_stride[1] + b2 * p->rhs_batch_stride[2];
                /* depth-contiguous views of both operands */
                lrs = p->lhs_row_stride;
                rcs = p->rhs_col_stride;
                if (rpack != NULL) {
                    gather(rpack, rr, cols, rcs, depth, p->rhs_k_stride);
                    rr = rpack;
                    rcs = depth;
                }
                if (lpack != NULL) {
                    gather(lpack, l, rows, lrs, depth, p->lhs_k_stride);
                    l = lpack;
                    lrs = depth;
                }
                /* sum (a + lo)(b + ro) = sum ab + ro sum a + lo sum b + depth lo ro: the
                 * column terms are a bias vector, the row term a scalar */
                if (colbias != NULL) {
                    for (c = 0; c < cols; c++) {
                        colbias[c] = lo_off * sum_s8(rr + c * rcs, depth);
                    }
                }
                for (r = 0; r < rows; r++) {
                    const int8_t *lrow = l + r * lrs;
                    matvec_s8(lrow, depth, rr, rcs, cols, colbias,
                              ro_off * sum_s8(lrow, depth) + nlr, &q, 0u, y_off, 1, -128, 127, 0,
                              out);
                    out += cols;
                }
            }
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Element-wise                                                                                 */

/*
 * ADD fast paths. TFLM prepares an int8 ADD with left_shift 20 and input multipliers
 * in_scale / (2 max_scale): the input with the larger scale gets exactly 0.5 (Q31 2^30, shift 0),
 * and since its operand (x - zp) * 2^20 is even, srdhm(v, 2^30) = floor((v + 1) / 2) = v / 2:
 * its rescale is the exact (x - zp) * 2^19. The other input has a multiplier below 0.5, so its
 * rounding shift is >= 1, as is the output's (2 max_scale / (2^20 out_scale) is far below 1).
 * The loops below cover those cases with unit inner strides and a full int8 output range; any
 * other parameter set takes the general loop. Same integers either way.
 */
#define ADD_IN_EXACT(q) ((q).multiplier == (1 << 30) && (q).shift == 0)

/* round(srdhm(x, m) / 2^e), e >= 1: ties away from zero */
static ECG_NN_ALWAYS_INLINE int32_t rq_e1(int32_t x, int32_t m, int32_t half, int32_t e)
{
    const int32_t t = srdhm_pos(x, m);
    return (t + half + (t >> 31)) >> e;
}

static void add_fast(const ecg_nn_add_params_t *p, const int8_t *in1, const int8_t *in2,
                     int8_t *out, int in1_exact)
{
    const ecg_nn_bcast_t *s = &p->shape;
    const int32_t *scaled2 = p->input2_scaled;
    const int32_t off1 = p->input1_offset * (1 << 20), off2 = p->input2_offset * (1 << 20);
    const int32_t m1 = p->input1_quant.multiplier, e1 = -p->input1_quant.shift;
    const int32_t m2 = p->input2_quant.multiplier, e2 = -p->input2_quant.shift;
    const int32_t mo = p->output_quant.multiplier, eo = -p->output_quant.shift;
    const int32_t h1 = e1 > 0 ? 1 << (e1 - 1) : 0, h2 = e2 > 0 ? 1 << (e2 - 1) : 0;
    const int32_t ho = 1 << (eo - 1);
    const int32_t y_off = p->output_offset;
    const uint32_t n = s->dims[3];
    uint32_t i0, i1, i2, i;
    for (i0 = 0; i0 < s->dims[0]; i0++) {
        for (i1 = 0; i1 < s->dims[1]; i1++) {
            for (i2 = 0; i2 < s->dims[2]; i2++) {
                const int8_t *x1 = in1 + (i0 * s->stride1[0] + i1 * s->stride1[1] +
                                          i2 * s->stride1[2]);
                const uint32_t b = i0 * s->stride2[0] + i1 * s->stride2[1] + i2 * s->stride2[2];
                if (scaled2 != NULL && in1_exact) {
                    const int32_t *x2 = scaled2 + b;
                    for (i = 0; i < n; i++) {
                        const int32_t sa = (*x1++ * (1 << 20) + off1) >> 1;
                        *out++ = clamp_s8(rq_e1(sa + *x2++, mo, ho, eo) + y_off, 1, -128, 127);
                    }
                } else if (scaled2 != NULL) {
                    const int32_t *x2 = scaled2 + b;
                    for (i = 0; i < n; i++) {
                        const int32_t sa = rq_e1(*x1++ * (1 << 20) + off1, m1, h1, e1);
                        *out++ = clamp_s8(rq_e1(sa + *x2++, mo, ho, eo) + y_off, 1, -128, 127);
                    }
                } else if (e2 == 0) { /* both inputs exact (equal scales) */
                    const int8_t *x2 = in2 + b;
                    for (i = 0; i < n; i++) {
                        const int32_t sa = (*x1++ * (1 << 20) + off1) >> 1;
                        const int32_t sb = (*x2++ * (1 << 20) + off2) >> 1;
                        *out++ = clamp_s8(rq_e1(sa + sb, mo, ho, eo) + y_off, 1, -128, 127);
                    }
                } else {
                    const int8_t *x2 = in2 + b;
                    for (i = 0; i < n; i++) {
                        const int32_t sa = (*x1++ * (1 << 20) + off1) >> 1;
                        const int32_t sb = rq_e1(*x2++ * (1 << 20) + off2, m2, h2, e2);
                        *out++ = clamp_s8(rq_e1(sa + sb, mo, ho, eo) + y_off, 1, -128, 127);
                    }
                }
            }
        }
    }
}

ecg_err_t ecg_nn_add_s8(const ecg_nn_add_params_t *p, const int8_t *in1, const int8_t *in2,
                        int8_t *out)
{
    ecg_nn_bcast_t s;
    rshift_t r1, r2, ro;
    const int32_t *scaled2;
    int32_t off1, off2, y_off, lo, hi, scale_in;
    int full, in1_exact, in2_exact;
    uint32_t i0, i1, i2, i3;
    if (p == NULL || in1 == NULL || out == NULL || (in2 == NULL && p->input2_scaled == NULL)) {
        return ECG_ERR_NULL;
    }
    if (p->input1_quant.shift > 0 || p->input2_quant.shift > 0 || p->output_quant.shift > 0 ||
        p->left_shift < 0 || p->left_shift > 22) {
        return ECG_ERR_RANGE; /* not an int8 ADD as TFLM prepares it */
    }
    s = p->shape;
    full = p->act_min <= -128 && p->act_max >= 127;
    in1_exact = ADD_IN_EXACT(p->input1_quant);
    in2_exact = ADD_IN_EXACT(p->input2_quant);
    if (full && p->left_shift == 20 && p->output_quant.shift < 0 && s.stride1[3] == 1u &&
        s.stride2[3] == 1u &&
        (p->input2_scaled != NULL ? (in1_exact || p->input1_quant.shift < 0)
                                  : (in1_exact && (in2_exact || p->input2_quant.shift < 0)))) {
        add_fast(p, in1, in2, out, in1_exact);
        return ECG_OK;
    }
    /* the general loop */
    r1 = rshift_make(&p->input1_quant);
    r2 = rshift_make(&p->input2_quant);
    ro = rshift_make(&p->output_quant);
    scaled2 = p->input2_scaled;
    scale_in = 1 << p->left_shift;
    off1 = p->input1_offset * scale_in; /* (x + off) << ls == x * 2^ls + off * 2^ls */
    off2 = p->input2_offset * scale_in;
    y_off = p->output_offset;
    lo = p->act_min;
    hi = p->act_max;
    for (i0 = 0; i0 < s.dims[0]; i0++) {
        for (i1 = 0; i1 < s.dims[1]; i1++) {
            for (i2 = 0; i2 < s.dims[2]; i2++) {
                const int8_t *x1 = in1 + (i0 * s.stride1[0] + i1 * s.stride1[1] +
                                          i2 * s.stride1[2]);
                const uint32_t b = i0 * s.stride2[0] + i1 * s.stride2[1] + i2 * s.stride2[2];
                const uint32_t st1 = s.stride1[3], st2 = s.stride2[3];
                const uint32_t n = s.dims[3];
                for (i3 = 0; i3 < n; i3++) {
                    const int32_t sa = rshift_apply(*x1 * scale_in + off1, &r1);
                    const int32_t sb = scaled2 != NULL
                                           ? scaled2[b + i3 * st2]
                                           : rshift_apply(in2[b + i3 * st2] * scale_in + off2, &r2);
                    *out++ = clamp_s8(rshift_apply(sa + sb, &ro) + y_off, full, lo, hi);
                    x1 += st1;
                }
            }
        }
    }
    return ECG_OK;
}

ecg_err_t ecg_nn_mul_s8(const ecg_nn_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                        int8_t *out)
{
    ecg_nn_bcast_t s;
    ecg_nn_quant_t q;
    rshift_t rq = {0, 0, 0, 0};
    int32_t off1, off2, y_off, lo, hi;
    int full;
    uint32_t i0, i1, i2, i3;
    if (p == NULL || in1 == NULL || in2 == NULL || out == NULL) {
        return ECG_ERR_NULL;
    }
    s = p->shape;
    q = p->quant;
    off1 = p->input1_offset;
    off2 = p->input2_offset;
    y_off = p->output_offset;
    lo = p->act_min;
    hi = p->act_max;
    full = lo <= -128 && hi >= 127;
    if (q.shift <= 0) {
        rq = rshift_make(&q);
    }
    for (i0 = 0; i0 < s.dims[0]; i0++) {
        for (i1 = 0; i1 < s.dims[1]; i1++) {
            for (i2 = 0; i2 < s.dims[2]; i2++) {
                const int8_t *x1 = in1 + (i0 * s.stride1[0] + i1 * s.stride1[1] +
                                          i2 * s.stride1[2]);
                const int8_t *x2 = in2 + (i0 * s.stride2[0] + i1 * s.stride2[1] +
                                          i2 * s.stride2[2]);
                const uint32_t st1 = s.stride1[3], st2 = s.stride2[3];
                const uint32_t n = s.dims[3];
                if (q.shift <= 0) {
                    for (i3 = 0; i3 < n; i3++) {
                        const int32_t prod = (*x1 + off1) * (*x2 + off2);
                        *out++ = clamp_s8(rshift_apply(prod, &rq) + y_off, full, lo, hi);
                        x1 += st1;
                        x2 += st2;
                    }
                } else {
                    for (i3 = 0; i3 < n; i3++) {
                        const int32_t prod = (*x1 + off1) * (*x2 + off2);
                        *out++ = clamp_s8(requant(prod, q.multiplier, q.shift) + y_off, full, lo,
                                          hi);
                        x1 += st1;
                        x2 += st2;
                    }
                }
            }
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Softmax: gemmlowp fixed point                                                                */

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0: saturating x * 2^e. */
static int32_t sat_shl(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return shl(x, e);
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31 in and out. */
static int32_t exp_on_interval(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = wrap_add(a, 1 << 28); /* a + 1/8 */
    const int32_t x2 = srdhm(x, x);
    const int32_t x3 = srdhm(x2, x);
    const int32_t x4 = srdhm(x2, x2);
    const int32_t x4_over_4 = rdbpot(x4, 2);
    const int32_t poly =
        rdbpot(wrap_add(srdhm(wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return wrap_add(constant_term, srdhm(constant_term, wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values for a Q5.26 argument a <= 0; Q0.31 result. */
static int32_t exp_on_negative_values_q5(int32_t a)
{
    static const int32_t k_multiplier[7] = {1672461947, 1302514674, 790015084, 290630308,
                                            39332535,   720401,     242};
    const int32_t one_quarter = 1 << 24; /* 1/4 in Q5.26 */
    const int32_t a_mod_quarter_minus_one_quarter = wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_on_interval(sat_shl(a_mod_quarter_minus_one_quarter, 5)); /* Q0.31 */
    const int32_t remainder = wrap_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t k;
    /* barrel shifter: multiply by exp(-2^e) for every bit e = -2..4 set in the remainder */
    for (k = 0; k < 7; k++) {
        if ((remainder & (1 << (24 + k))) != 0) {
            result = srdhm(result, k_multiplier[k]);
        }
    }
    /* 5 integer bits: gemmlowp's clamp below -32 does not apply */
    return a == 0 ? Q31_ONE_MINUS : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson), Q0.31 in and out. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + Q31_ONE_MINUS;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum */
    const int32_t constant_48_over_17 = 1515870810;    /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    int32_t x = wrap_add(constant_48_over_17, srdhm(half_denominator, constant_neg_32_over_17));
    int k;
    for (k = 0; k < 3; k++) {
        const int32_t half_denominator_times_x = srdhm(half_denominator, x);
        const int32_t one_minus = wrap_sub(1 << 29, half_denominator_times_x);
        x = wrap_add(x, sat_shl(srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1);
}

ecg_err_t ecg_nn_softmax_exp_lut(int32_t input_multiplier, int32_t input_left_shift,
                                 int32_t diff_min, int32_t *lut)
{
    int32_t i;
    if (lut == NULL) {
        return ECG_ERR_NULL;
    }
    if (input_multiplier < 0 || input_left_shift < 0 || input_left_shift > 31) {
        return ECG_ERR_RANGE;
    }
    for (i = 0; i < (int32_t)ECG_NN_SOFTMAX_LUT_LEN; i++) {
        const int32_t diff = -i;
        if (diff >= diff_min) {
            /* MultiplyByQuantizedMultiplierGreaterThanOne: Q5.26 scaled difference */
            const int32_t scaled = srdhm(shl(diff, input_left_shift), input_multiplier);
            lut[i] = exp_on_negative_values_q5(scaled);
        } else {
            lut[i] = 0; /* skipped by TFLM: contributes 0 to the sum, and outputs -128 */
        }
    }
    return ECG_OK;
}

static int32_t clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 32 : (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

ecg_err_t ecg_nn_softmax_s8(const ecg_nn_softmax_params_t *p, const int8_t *input,
                            int8_t *output)
{
    uint32_t r, c, rows, depth;
    const int32_t *lut;
    if (p == NULL || input == NULL || output == NULL || p->exp_lut == NULL) {
        return ECG_ERR_NULL;
    }
    rows = p->rows;
    depth = p->depth;
    lut = p->exp_lut;
    for (r = 0; r < rows; r++) {
        const int8_t *x = input + (size_t)r * depth;
        int8_t *y = output + (size_t)r * depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int32_t headroom_plus_one, exponent, shifted_scale;
        for (c = 0; c < depth; c++) {
            if (x[c] > max_in_row) {
                max_in_row = x[c];
            }
        }
        /* the table values are >= 0 (up to INT32_MAX), so RoundingDivideByPOT(v, 12) is
         * floor((v + 2^11) / 2^12) = ((v >> 11) + 1) >> 1, without the overflowing add */
        for (c = 0; c < depth; c++) {
            sum_of_exps = wrap_add(sum_of_exps, ((lut[max_in_row - x[c]] >> 11) + 1) >> 1);
        }
        /* GetReciprocal(sum_of_exps, 12): 1 / sum as Q0.31 times 2^-num_bits_over_unit */
        headroom_plus_one = clz32((uint32_t)sum_of_exps);
        shifted_scale = one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - 0x80000000u));
        exponent = (12 - headroom_plus_one) + 31 - 8;
        /* shifted_scale > 0 and e >= 0: srdhm(shifted_scale, e) >= 0, never saturating, and
         * exponent >= 1 (sum >= 2^19), so the rounding divide is ((v >> (exponent-1)) + 1) >> 1 */
        {
            const int32_t e1 = exponent - 1;
            for (c = 0; c < depth; c++) {
                const int32_t e = lut[max_in_row - x[c]];
                const int32_t prod = (int32_t)(((int64_t)shifted_scale * e + (1 << 30)) >> 31);
                const int32_t v = (((prod >> e1) + 1) >> 1) - 128;
                y[c] = (int8_t)(v > 127 ? 127 : v);
            }
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Mean                                                                                         */

ecg_err_t ecg_nn_mean_s8(const ecg_nn_mean_params_t *p, const int8_t *input, int8_t *output)
{
    uint32_t o, j, r;
    if (p == NULL || input == NULL || output == NULL) {
        return ECG_ERR_NULL;
    }
    for (o = 0; o < p->outer; o++) {
        const int8_t *x = input + (size_t)o * p->reduce * p->inner;
        for (j = 0; j < p->inner; j++) {
            int32_t sum = 0;
            int32_t v;
            for (r = 0; r < p->reduce; r++) {
                sum += x[(size_t)r * p->inner + j];
            }
            if (p->requantize) {
                v = requant(sum - p->input_zero_point * (int32_t)p->reduce, p->quant.multiplier,
                            p->quant.shift) +
                    p->output_offset;
                v = clamp32(v, -128, 127);
            } else {
                v = sum / (int32_t)p->reduce;
            }
            *output++ = (int8_t)v;
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Transpose                                                                                    */

ecg_err_t ecg_nn_transpose_s8(const ecg_nn_transpose_params_t *p, const int8_t *input,
                              int8_t *output)
{
    uint32_t idx[ECG_NN_MAX_DIMS - 1u] = {0};
    uint32_t outer = 1, n, k, src = 0, inner, inner_stride;
    int d;
    if (p == NULL || input == NULL || output == NULL) {
        return ECG_ERR_NULL;
    }
    inner = p->dims[ECG_NN_MAX_DIMS - 1u];
    inner_stride = p->stride[ECG_NN_MAX_DIMS - 1u];
    for (d = 0; d < (int)ECG_NN_MAX_DIMS - 1; d++) {
        outer *= p->dims[d];
    }
    for (n = 0; n < outer; n++) {
        const int8_t *s = input + src;
        for (k = 0; k < inner; k++) {
            *output++ = s[k * inner_stride];
        }
        /* odometer increment of the outer output index, tracking the input offset */
        for (d = (int)ECG_NN_MAX_DIMS - 2; d >= 0; d--) {
            if (++idx[d] < p->dims[d]) {
                src += p->stride[d];
                break;
            }
            src -= (idx[d] - 1u) * p->stride[d];
            idx[d] = 0;
        }
    }
    return ECG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Convolution and pooling                                                                      */

ecg_err_t ecg_nn_conv_s8(const ecg_nn_conv_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t n, oy, ox, oc;
    if (p == NULL || input == NULL || output == NULL || p->filter == NULL || p->quant == NULL) {
        return ECG_ERR_NULL;
    }
    for (n = 0; n < (int32_t)p->batches; n++) {
        const int8_t *in_n = input + (size_t)n * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < (int32_t)p->out_h; oy++) {
            const int32_t y0 = oy * (int32_t)p->stride_h - (int32_t)p->pad_h;
            for (ox = 0; ox < (int32_t)p->out_w; ox++) {
                const int32_t x0 = ox * (int32_t)p->stride_w - (int32_t)p->pad_w;
                for (oc = 0; oc < (int32_t)p->out_c; oc++) {
                    int32_t acc = 0, ky, kx, v;
                    for (ky = 0; ky < (int32_t)p->k_h; ky++) {
                        const int32_t iy = y0 + ky * (int32_t)p->dilation_h;
                        if (iy < 0 || iy >= (int32_t)p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < (int32_t)p->k_w; kx++) {
                            const int32_t ix = x0 + kx * (int32_t)p->dilation_w;
                            const int8_t *px;
                            if (ix < 0 || ix >= (int32_t)p->in_w) {
                                continue;
                            }
                            px = in_n + ((size_t)iy * p->in_w + (size_t)ix) * p->in_c;
                            if (p->depth_multiplier == 0u) {
                                const int32_t per_group = (int32_t)p->out_c /
                                                          ((int32_t)p->in_c / (int32_t)p->filter_in_c);
                                const int32_t group = oc / per_group;
                                const int8_t *f =
                                    p->filter + (((size_t)oc * p->k_h + (size_t)ky) * p->k_w +
                                                 (size_t)kx) * p->filter_in_c;
                                acc += dot_s8_offsets(f, 0, px + group * (int32_t)p->filter_in_c,
                                                      p->input_offset, p->filter_in_c);
                            } else {
                                const int32_t ic = oc / (int32_t)p->depth_multiplier;
                                const int32_t f =
                                    p->filter[((size_t)ky * p->k_w + (size_t)kx) * p->out_c +
                                              (size_t)oc];
                                acc += f * ((int32_t)px[ic] + p->input_offset);
                            }
                        }
                    }
                    if (p->bias != NULL) {
                        acc += p->bias[oc];
                    }
                    v = requant(acc, p->quant[oc].multiplier, p->quant[oc].shift) +
                        p->output_offset;
                    *output++ = (int8_t)clamp32(v, p->act_min, p->act_max);
                }
            }
        }
    }
    return ECG_OK;
}

ecg_err_t ecg_nn_avgpool_s8(const ecg_nn_avgpool_params_t *p, const int8_t *input,
                            int8_t *output)
{
    int32_t n, oy, ox, ch;
    if (p == NULL || input == NULL || output == NULL) {
        return ECG_ERR_NULL;
    }
    for (n = 0; n < (int32_t)p->batches; n++) {
        const int8_t *in_n = input + (size_t)n * p->in_h * p->in_w * p->channels;
        for (oy = 0; oy < (int32_t)p->out_h; oy++) {
            const int32_t y0 = oy * (int32_t)p->stride_h - (int32_t)p->pad_h;
            const int32_t ky0 = y0 < 0 ? -y0 : 0;
            const int32_t ky1 = (int32_t)p->k_h < (int32_t)p->in_h - y0 ? (int32_t)p->k_h
                                                                        : (int32_t)p->in_h - y0;
            for (ox = 0; ox < (int32_t)p->out_w; ox++) {
                const int32_t x0 = ox * (int32_t)p->stride_w - (int32_t)p->pad_w;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t kx1 = (int32_t)p->k_w < (int32_t)p->in_w - x0
                                        ? (int32_t)p->k_w
                                        : (int32_t)p->in_w - x0;
                for (ch = 0; ch < (int32_t)p->channels; ch++) {
                    int32_t acc = 0, count = 0, ky, kx;
                    for (ky = ky0; ky < ky1; ky++) {
                        for (kx = kx0; kx < kx1; kx++) {
                            acc += in_n[((size_t)(y0 + ky) * p->in_w + (size_t)(x0 + kx)) *
                                            p->channels +
                                        (size_t)ch];
                            count++;
                        }
                    }
                    if (count == 0) {
                        return ECG_ERR_CONFIG;
                    }
                    /* round to nearest, ties away from zero, by truncating division */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    *output++ = (int8_t)clamp32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return ECG_OK;
}

ecg_err_t ecg_nn_requantize_s8(const ecg_nn_requantize_params_t *p, const int8_t *input,
                               int8_t *output)
{
    uint32_t i;
    if (p == NULL || input == NULL || output == NULL) {
        return ECG_ERR_NULL;
    }
    for (i = 0; i < p->count; i++) {
        const int32_t v = requant((int32_t)input[i] - p->input_zero_point, p->quant.multiplier,
                                  p->quant.shift) +
                          p->output_offset;
        output[i] = (int8_t)clamp32(v, p->act_min, p->act_max);
    }
    return ECG_OK;
}

ecg_err_t ecg_nn_lut_s8(const ecg_nn_lut_params_t *p, const int8_t *input, int8_t *output)
{
    const int8_t *table;
    uint32_t i, n;
    if (p == NULL || input == NULL || output == NULL || p->table == NULL) {
        return ECG_ERR_NULL;
    }
    table = p->table;
    n = p->count;
    for (i = 0; i < n; i++) {
        output[i] = table[(uint8_t)input[i]];
    }
    return ECG_OK;
}
