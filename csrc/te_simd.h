/**
 * @file te_simd.h
 * @brief SIMD building blocks of the int8 kernels for Cortex-M cores with the DSP extension.
 *
 * The convolution, depthwise and fully-connected kernels choose their SIMD path INSIDE the same
 * functions, on TE_SIMD, so the generated code and the memory plan are one for every target:
 *
 * - TE_SIMD is 1 where the compiler defines __ARM_FEATURE_DSP and __ARM_FEATURE_SIMD32
 *   (Cortex-M4, M7, M33, M55 with GCC or Clang, little endian) in an optimising build, and
 *   TE_NO_SIMD is not defined. The helpers below are then ACLE intrinsics from arm_acle.h
 *   (__smlad, __sxtb16, __sxtab16, __ssat, __ssub8, __sel, __smlabb ...) plus one-instruction
 *   inline assembly for the forms GCC 12 does not fuse on its own: SXTB16/SXTAB16 with ROR #8,
 *   SMMLAR and BFI, and the hottest loops as whole blocks of assembly (TE_SIMD_ASM below). At
 *   -O0 the always-inline helpers would give kernel frames of several KB, more than a firmware's
 *   stack reserve: unoptimised (debug) builds take the portable loops.
 * - TE_SIMD_EMULATE (a test switch for the host) gives TE_SIMD 1 with plain C equivalents of
 *   those instructions, so that the SIMD algorithms (blocking, tails, in-place orders) also run
 *   under the host's sanitizers. Little-endian hosts only.
 * - Otherwise TE_SIMD is 0 and the kernels use their portable loops.
 *
 * Exactness. Accumulation order does not change an int32 sum that does not overflow, and the
 * callers only take the SIMD path when |acc| < 2^30 is guaranteed (te_simd_rq_ok). The fast
 * requantisation (te_simd_requant) is TFLite's MultiplyByQuantizedMultiplier rewritten, not
 * approximated; the derivation is beside it.
 */
#ifndef TE_SIMD_H
#define TE_SIMD_H

#include <string.h>

#include "te_common.h"

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && \
    defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(TE_NO_SIMD)
#define TE_SIMD 1
#define TE_SIMD_ACLE 1
#include <arm_acle.h>
#elif defined(TE_SIMD_EMULATE) && !defined(TE_NO_SIMD)
#define TE_SIMD 1
#define TE_SIMD_ACLE 0
#else
#define TE_SIMD 0
#define TE_SIMD_ACLE 0
#endif

/* The inner loops written as whole blocks of assembly hold 13 or 14 values in registers. GCC
 * frees that many at -O1, -Og, -Os, -O2 and -O3 (checked by tests/test_simd.py), not with a
 * frame pointer: there the intrinsics versions, which compute the same, take over
 * (TE_SIMD_NO_ASM forces that, e.g. with -fno-omit-frame-pointer). Keeping them at -Os matters:
 * the intrinsics loops are 1.1-1.3x CMSIS-NN's instructions where the assembly is 0.5-0.9x. */
#if TE_SIMD_ACLE && !defined(__clang__) && \
    !defined(TE_SIMD_NO_ASM)
#define TE_SIMD_ASM 1
#else
#define TE_SIMD_ASM 0
#endif

#if TE_SIMD

#if TE_SIMD_ACLE && defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduler hoists every load of the SIMD loops to their top; the values
 * then outlive Thumb-2's 14 registers and spill inside the loop. Cortex-M cores issue in
 * order from a short pipeline, so that scheduling gains little, and without it the loops keep
 * the statement order written here. This applies to the kernel file that includes this header
 * (only when it compiles the SIMD path). */
#pragma GCC optimize("no-schedule-insns")
#endif

#if defined(__GNUC__)
#define TE_SIMD_INLINE static inline __attribute__((always_inline))
#define TE_SIMD_NOINLINE __attribute__((noinline))
#else
#define TE_SIMD_INLINE static inline
#define TE_SIMD_NOINLINE
#endif

/* ---- memory: unaligned word access through memcpy (one LDR/STR on ARMv7E-M) ---------------- */

TE_SIMD_INLINE uint32_t te_simd_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

TE_SIMD_INLINE void te_simd_store4(int8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

TE_SIMD_INLINE void te_simd_store2(int8_t *p, uint32_t v)
{
    const uint16_t h = (uint16_t)v;
    memcpy(p, &h, 2);
}

/* ---- single instructions ------------------------------------------------------------------- */

#if TE_SIMD_ACLE

/** (sext(x.b0), sext(x.b2)) as two int16 lanes. */
TE_SIMD_INLINE int32_t te_sxtb16(uint32_t x)
{
    return __sxtb16((int32_t)x);
}

/** (sext(x.b1), sext(x.b3)): SXTB16 with ROR #8. */
TE_SIMD_INLINE int32_t te_sxtb16_r8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/** (a.lo + sext(x.b0), a.hi + sext(x.b2)), lane-wise modulo 2^16. */
TE_SIMD_INLINE int32_t te_sxtab16(int32_t a, uint32_t x)
{
    return __sxtab16(a, (int32_t)x);
}

/** (a.lo + sext(x.b1), a.hi + sext(x.b3)): SXTAB16 with ROR #8. */
TE_SIMD_INLINE int32_t te_sxtab16_r8(int32_t a, uint32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/** acc + a.lo * b.lo + a.hi * b.hi. */
TE_SIMD_INLINE int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/** acc + a.lo * b.lo. */
TE_SIMD_INLINE int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

/** acc + a.hi * b.lo. */
TE_SIMD_INLINE int32_t te_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return __smlatb(a, b, acc);
}

/** acc + a.hi * b.hi. */
TE_SIMD_INLINE int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

/** c + ((a * b + 2^31) >> 32) with a 64-bit product: SMMLAR. */
TE_SIMD_INLINE int32_t te_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/** x saturated to [-128, 127]. */
TE_SIMD_INLINE int32_t te_ssat8(int32_t x)
{
    return __ssat(x, 8);
}

/** Four int8 values (each already in [-128, 127]) packed into a word, a in the low byte. */
TE_SIMD_INLINE uint32_t te_pack4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    uint32_t w = (uint32_t)a;
    __asm__("bfi %0, %1, #8, #8" : "+r"(w) : "r"(b));
    __asm__("bfi %0, %1, #16, #8" : "+r"(w) : "r"(c));
    __asm__("bfi %0, %1, #24, #8" : "+r"(w) : "r"(d));
    return w;
}

/** Byte-wise clamp of four int8 lanes to [lo4, hi4] (SSUB8 sets GE, SEL picks). */
TE_SIMD_INLINE uint32_t te_clamp4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    (void)__ssub8((int32_t)v, (int32_t)lo4);
    v = __sel(v, lo4);
    (void)__ssub8((int32_t)v, (int32_t)hi4);
    return __sel(hi4, v);
}

#else /* TE_SIMD_EMULATE: the same instructions in C, bit for bit */

TE_SIMD_INLINE int32_t te_emu_lanes(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16));
}

TE_SIMD_INLINE int32_t te_emu_lo(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xffffu);
}

TE_SIMD_INLINE int32_t te_emu_hi(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
}

TE_SIMD_INLINE int32_t te_emu_byte(uint32_t x, int k)
{
    return (int32_t)(int8_t)(uint8_t)(x >> (8 * k));
}

TE_SIMD_INLINE int32_t te_sxtb16(uint32_t x)
{
    return te_emu_lanes(te_emu_byte(x, 0), te_emu_byte(x, 2));
}

TE_SIMD_INLINE int32_t te_sxtb16_r8(uint32_t x)
{
    return te_emu_lanes(te_emu_byte(x, 1), te_emu_byte(x, 3));
}

TE_SIMD_INLINE int32_t te_sxtab16(int32_t a, uint32_t x)
{
    return te_emu_lanes(te_emu_lo(a) + te_emu_byte(x, 0), te_emu_hi(a) + te_emu_byte(x, 2));
}

TE_SIMD_INLINE int32_t te_sxtab16_r8(int32_t a, uint32_t x)
{
    return te_emu_lanes(te_emu_lo(a) + te_emu_byte(x, 1), te_emu_hi(a) + te_emu_byte(x, 3));
}

TE_SIMD_INLINE int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    const uint32_t s = (uint32_t)acc + (uint32_t)(te_emu_lo(a) * te_emu_lo(b)) +
                       (uint32_t)(te_emu_hi(a) * te_emu_hi(b));
    return (int32_t)s;
}

TE_SIMD_INLINE int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_emu_lo(a) * te_emu_lo(b)));
}

TE_SIMD_INLINE int32_t te_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_emu_hi(a) * te_emu_lo(b)));
}

TE_SIMD_INLINE int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_emu_hi(a) * te_emu_hi(b)));
}

TE_SIMD_INLINE int32_t te_smmlar(int32_t a, int32_t b, int32_t c)
{
    const uint64_t s = ((uint64_t)(uint32_t)c << 32) + (uint64_t)((int64_t)a * (int64_t)b) +
                       0x80000000u;
    return (int32_t)(uint32_t)(s >> 32);
}

TE_SIMD_INLINE int32_t te_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

TE_SIMD_INLINE uint32_t te_pack4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    return ((uint32_t)a & 0xffu) | (((uint32_t)b & 0xffu) << 8) | (((uint32_t)c & 0xffu) << 16) |
           ((uint32_t)d << 24);
}

TE_SIMD_INLINE uint32_t te_clamp4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    uint32_t r = 0;
    int k;
    for (k = 0; k < 4; ++k) {
        const int32_t x = te_emu_byte(v, k);
        const int32_t lo = te_emu_byte(lo4, k);
        const int32_t hi = te_emu_byte(hi4, k);
        r |= ((uint32_t)te_clamp(x, lo, hi) & 0xffu) << (8 * k);
    }
    return r;
}

#endif /* TE_SIMD_ACLE */

/** The low int16 lane of a word (the scalar offset inside a te_simd_dup16 value). */
TE_SIMD_INLINE int32_t te_simd_lane0(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xffffu);
}

/** An int16 value in both lanes, for SXTAB16's offset operand. */
TE_SIMD_INLINE int32_t te_simd_dup16(int32_t v)
{
    return (int32_t)(((uint32_t)v & 0xffffu) | ((uint32_t)v << 16));
}

/** An int8 value in all four byte lanes, for te_clamp4's limits. */
TE_SIMD_INLINE uint32_t te_simd_dup8(int32_t v)
{
    return ((uint32_t)v & 0xffu) * 0x01010101u;
}

/* ---- requantisation ------------------------------------------------------------------------ */

/** One output channel's requantisation in the form te_simd_requant takes. */
typedef struct {
    int32_t mult;  /**< the Q31 multiplier, >= 0 */
    int32_t round; /**< 2^(e-1) + output_offset * 2^e */
    int32_t shift; /**< e = -shift, in [1, 22] */
} te_simd_rq_t;

/**
 * Whether te_simd_requant is exact for every channel of a kernel call: every multiplier >= 0,
 * every shift in [-22, -1] (TFLite's shifts for multipliers in [2^-22, 1/2); convolutions sit
 * far inside), and |acc| < 2^30 for every accumulator, which holds when
 * max |bias| + products * max_product < 2^30.
 * @param channels   number of bias values (and of requantisation entries when per channel)
 * @param products   terms summed per output
 * @param max_product the largest |term|: 128 * 255 for int8 weights without offset
 */
static inline int te_simd_rq_ok(const te_requant_t *rq, const int32_t *bias, int32_t channels,
                                int32_t products, int32_t max_product)
{
    const int32_t limit = (int32_t)1 << 30;
    const int32_t n_rq = rq->per_channel ? channels : 1;
    int32_t c, max_bias = 0;
    if (products < 0 || max_product <= 0 || products > (limit - 1) / max_product) {
        return 0;
    }
    for (c = 0; c < n_rq; ++c) {
        if (rq->multiplier[c] < 0 || rq->shift[c] > -1 || rq->shift[c] < -22) {
            return 0;
        }
    }
    if (bias != NULL) {
        for (c = 0; c < channels; ++c) {
            const int32_t b = bias[c];
            if (b <= -limit || b >= limit) {
                return 0;
            }
            max_bias = b < 0 ? (-b > max_bias ? -b : max_bias) : (b > max_bias ? b : max_bias);
        }
    }
    return max_bias < limit - products * max_product;
}

/**
 * Whether channel c alone meets te_simd_rq_ok's conditions. Where some channels of a call do
 * and others do not, the out-of-place kernels run their SIMD path for every channel and then
 * recompute the others with the exact scalar rule, instead of taking the portable loops for
 * the whole layer (a few degenerate channels: multiplier 0, shift -31, a bias near 2^31).
 */
static inline int te_simd_rq_channel_ok(const te_requant_t *rq, const int32_t *bias, int32_t c,
                                        int32_t products, int32_t max_product)
{
    const int32_t limit = (int32_t)1 << 30;
    const int32_t i = rq->per_channel ? c : 0;
    const int32_t b = bias != NULL ? bias[c] : 0;
    if (products < 0 || max_product <= 0 || products > (limit - 1) / max_product ||
        rq->multiplier[i] < 0 || rq->shift[i] > -1 || rq->shift[i] < -22) {
        return 0;
    }
    return b > -limit && b < limit && (b < 0 ? -b : b) < limit - products * max_product;
}

/** Whether any channel of the call meets te_simd_rq_channel_ok (the partial-domain mode pays
 * off only then). */
static inline int te_simd_rq_any_ok(const te_requant_t *rq, const int32_t *bias,
                                    int32_t channels, int32_t products, int32_t max_product)
{
    int32_t c;
    for (c = 0; c < channels; ++c) {
        if (te_simd_rq_channel_ok(rq, bias, c, products, max_product)) {
            return 1;
        }
    }
    return 0;
}

/** The te_simd_rq_t of multiplier m and shift sh (< 0); zp2p1 = 2 * output_offset + 1.
 * round = 2^(e-1) + zp * 2^e = (2 zp + 1) * 2^(e-1), and e - 1 = -sh - 1 = ~sh; shifted as
 * unsigned, as te_shift_left does. */
TE_SIMD_INLINE te_simd_rq_t te_simd_rq_make(int32_t m, int32_t sh, int32_t zp2p1)
{
    te_simd_rq_t r;
    r.mult = m;
    /* Masked to 0..31, which changes nothing inside the domain (e in [1, 22]) and keeps a
     * channel outside it defined: the kernels with a partial domain compute every channel here
     * and then recompute those (te_simd_rq_channel_ok). */
    r.shift = -sh & 31;
    r.round = (int32_t)((uint32_t)zp2p1 << (~sh & 31));
    return r;
}

/** Channel c's te_simd_rq_t (valid where te_simd_rq_ok said yes). */
TE_SIMD_INLINE te_simd_rq_t te_simd_rq_channel(const te_requant_t *rq, int32_t c,
                                               int32_t output_offset)
{
    const int32_t i = rq->per_channel ? c : 0;
    return te_simd_rq_make(rq->multiplier[i], rq->shift[i], 2 * output_offset + 1);
}

/**
 * te_requantize(acc) + output_offset, saturated to int8, in five instructions
 * (LSL, SMMLAR, ADD, ASR, SSAT). Exact under te_simd_rq_ok:
 * - SaturatingRoundingDoublingHighMul(a, m) = trunc((a*m + nudge) / 2^31) with nudge = 2^30 for
 *   a*m >= 0 and 1 - 2^30 otherwise; for negative a*m, trunc((p + 1 - 2^30) / 2^31) =
 *   floor((p + 1 - 2^30 + 2^31 - 1) / 2^31), so both cases are floor((a*m + 2^30) / 2^31) =
 *   floor((2a*m + 2^31) / 2^32), which is SMMULR(2a, m) when 2a fits (|a| < 2^30). The
 *   a = m = INT32_MIN saturation case cannot occur.
 * - RoundingDivideByPOT(r, e), e >= 1, rounds half away from zero: floor((r + 2^(e-1) - [r<0]) /
 *   2^e). With m >= 0, r < 0 implies acc < 0 and r > 0 implies acc > 0, and for r = 0 both
 *   2^(e-1) and 2^(e-1) - 1 give 0, so [r<0] may be replaced by [acc<0] = -(acc >> 31).
 * - Adding output_offset * 2^e before the shift adds output_offset after it, exactly; with
 *   e <= 22 and |r| <= 2^30 nothing overflows.
 * The caller then clamps to [act_min, act_max], which lies inside [-128, 127].
 */
TE_SIMD_INLINE int32_t te_simd_requant(int32_t acc, te_simd_rq_t q)
{
    /* acc << 1 as unsigned: the same LSL, and defined for the out-of-domain channels the
     * partial-domain kernels compute and then recompute. The add that follows can overflow only
     * for those channels; the emulation (checked under UBSan) adds as unsigned, the Arm build
     * keeps the signed form, whose code GCC schedules better (person_detect: 850 instructions
     * fewer on the M7), and whose ADD wraps there. */
    const int32_t t = te_smmlar((int32_t)((uint32_t)acc << 1), q.mult, q.round);
#if TE_SIMD_ACLE
    return te_ssat8((t + (acc >> 31)) >> q.shift);
#else
    return te_ssat8((int32_t)((uint32_t)t + (uint32_t)(acc >> 31)) >> q.shift);
#endif
}

/** One output: requantised, clamped to [lo, hi], as int8. */
TE_SIMD_INLINE int8_t te_simd_out1(int32_t acc, te_simd_rq_t q, int32_t lo, int32_t hi)
{
    return (int8_t)te_clamp(te_simd_requant(acc, q), lo, hi);
}

/** The fused activation's limits in the forms the stores use. */
typedef struct {
    int32_t lo, hi;    /**< act_min, act_max */
    uint32_t lo4, hi4; /**< the same in each byte lane, for te_clamp4 */
} te_simd_act_t;

TE_SIMD_INLINE te_simd_act_t te_simd_act(const te_quant_t *q)
{
    te_simd_act_t a;
    a.lo = q->act_min;
    a.hi = q->act_max;
    a.lo4 = te_simd_dup8(q->act_min);
    a.hi4 = te_simd_dup8(q->act_max);
    return a;
}

/** Whether the activation clamps nothing that SSAT #8 leaves: [-128, 127]. */
TE_SIMD_INLINE int te_simd_act_full(const te_quant_t *q)
{
    return q->act_min == -128 && q->act_max == 127;
}

/**
 * Stores a 2x2 block: s[2c + r] (pixel c, channel r with requantisation q0, q1) to out[r] and
 * out[stride + r]. With the full int8 range (`full`, a constant) the saturation is the clamp and
 * each value is one STRB; otherwise the four are packed into a word, clamped four lanes at a
 * time (SSUB8, SEL) and stored as two halfwords.
 */
TE_SIMD_INLINE void te_simd_store_2x2(int8_t *out, int32_t stride, const int32_t s[4],
                                      te_simd_rq_t q0, te_simd_rq_t q1, int full,
                                      const te_simd_act_t *a)
{
    if (full) {
        out[0] = (int8_t)te_simd_requant(s[0], q0);
        out[1] = (int8_t)te_simd_requant(s[1], q1);
        out[stride] = (int8_t)te_simd_requant(s[2], q0);
        out[stride + 1] = (int8_t)te_simd_requant(s[3], q1);
    } else {
        const uint32_t v = te_clamp4(te_pack4(te_simd_requant(s[0], q0),
                                              te_simd_requant(s[1], q1),
                                              te_simd_requant(s[2], q0),
                                              te_simd_requant(s[3], q1)),
                                     a->lo4, a->hi4);
        te_simd_store2(out, v);
        te_simd_store2(out + stride, v >> 16);
    }
}

/* ---- inner products -----------------------------------------------------------------------
 * s[r][c] += sum_i (x_c[i] + x_off) * (w_r[i] + w_off) over n int8 values, 4 per step: one
 * 32-bit load per operand row, SXTB16 / SXTB16 ROR #8 to split the even and odd bytes into
 * int16 lanes (SXTAB16 adds a packed offset at no cost), and SMLAD for two MACs per
 * instruction; the scalar tail takes the last n % 4 values. Statement order matters: each
 * operand is loaded just before its use, so that with pre-allocation scheduling off (below)
 * the live values fit Thumb-2's 14 registers. x_off2 = te_simd_dup16(x_off), and so on.
 */

/** Loads one word and advances the pointer: LDR with post-increment. */
#define TE_SIMD_NEXT4(p) (te_simd_load4((p += 4) - 4))

/** x's lanes with the input offset (SXTAB16) or without (SXTB16); `off` is a constant. */
#define TE_SIMD_XE(off, off2, t) ((off) ? te_sxtab16(off2, t) : te_sxtb16(t))
#define TE_SIMD_XO(off, off2, t) ((off) ? te_sxtab16_r8(off2, t) : te_sxtb16_r8(t))

/** Four values of two pixels (x, x + xs) times two filter rows (w, w + ws). */
TE_SIMD_INLINE void te_simd_step_2x2(const int8_t **x, int32_t xs, const int8_t **w, int32_t ws,
                                     int with_off, int32_t x_off2, int32_t s[4])
{
    uint32_t t = te_simd_load4(*w + ws);
    const int32_t wb_e = te_sxtb16(t), wb_o = te_sxtb16_r8(t);
    int32_t wa_e, wa_o, x_e, x_o;
    t = TE_SIMD_NEXT4(*w);
    wa_e = te_sxtb16(t);
    wa_o = te_sxtb16_r8(t);
    t = te_simd_load4(*x + xs);
    x_e = TE_SIMD_XE(with_off, x_off2, t);
    x_o = TE_SIMD_XO(with_off, x_off2, t);
    s[2] = te_smlad(x_e, wa_e, te_smlad(x_o, wa_o, s[2]));
    s[3] = te_smlad(x_e, wb_e, te_smlad(x_o, wb_o, s[3]));
    t = TE_SIMD_NEXT4(*x);
    x_e = TE_SIMD_XE(with_off, x_off2, t);
    x_o = TE_SIMD_XO(with_off, x_off2, t);
    s[0] = te_smlad(x_e, wa_e, te_smlad(x_o, wa_o, s[0]));
    s[1] = te_smlad(x_e, wb_e, te_smlad(x_o, wb_o, s[1]));
}

#if TE_SIMD_ASM
/*
 * The 2x2 step in assembly, for the loops over 8 values (two steps) per iteration. The step
 * holds 4 accumulators, 6 temporaries and the pointers, strides and offset: 13 to 15 values
 * where Thumb-2 has 14 registers, and GCC 12 spills inside the loop when it allocates them
 * itself (it also cannot fold the ROR #8 into SXTB16). The instructions are those of
 * te_simd_step_2x2 above, in the same order; t3/t1 = even/odd lanes of row 0's word, t2/t0 of
 * row 1's, t5/t4 of a pixel's.
 */
#define TE_ASM_X_PLAIN                                                                          \
    "sxtb16 %[t5], %[t4]\n\t"                                                                   \
    "sxtb16 %[t4], %[t4], ror #8\n\t"
#define TE_ASM_X_OFF                                                                            \
    "sxtab16 %[t5], %[off], %[t4]\n\t"                                                          \
    "sxtab16 %[t4], %[off], %[t4], ror #8\n\t"
#define TE_ASM_STEP_2X2(XS, WS, X_EXT)                                                          \
    "ldr %[t0], [%[w], %[" WS "]]\n\t"                                                          \
    "ldr %[t1], [%[w]], #4\n\t"                                                                 \
    "sxtb16 %[t2], %[t0]\n\t"                                                                   \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                           \
    "sxtb16 %[t3], %[t1]\n\t"                                                                   \
    "sxtb16 %[t1], %[t1], ror #8\n\t"                                                           \
    "ldr %[t4], [%[x], %[" XS "]]\n\t" X_EXT                                                    \
    "smlad %[s10], %[t5], %[t3], %[s10]\n\t"                                                    \
    "smlad %[s10], %[t4], %[t1], %[s10]\n\t"                                                    \
    "smlad %[s11], %[t5], %[t2], %[s11]\n\t"                                                    \
    "smlad %[s11], %[t4], %[t0], %[s11]\n\t"                                                    \
    "ldr %[t4], [%[x]], #4\n\t" X_EXT                                                           \
    "smlad %[s00], %[t5], %[t3], %[s00]\n\t"                                                    \
    "smlad %[s00], %[t4], %[t1], %[s00]\n\t"                                                    \
    "smlad %[s01], %[t5], %[t2], %[s01]\n\t"                                                    \
    "smlad %[s01], %[t4], %[t0], %[s01]\n\t"
/* te_simd_requant of accumulator S with multiplier M, round R and shift E into D (T: scratch);
 * S itself is read twice, D may be S. */
#define TE_ASM_REQUANT(D, S, M, R, E, T)                                                        \
    "lsl %[" T "], %[" S "], #1\n\t"                                                            \
    "smmlar %[" T "], %[" T "], %[" M "], %[" R "]\n\t"                                          \
    "add %[" T "], %[" T "], %[" S "], asr #31\n\t"                                              \
    "asr %[" T "], %[" T "], %[" E "]\n\t"                                                       \
    "ssat %[" D "], #8, %[" T "]\n\t"
#define TE_ASM_2X2_OUTS                                                                         \
    [x] "+r"(x), [w] "+r"(w), [s00] "+r"(s[0]), [s01] "+r"(s[1]), [s10] "+r"(s[2]),            \
        [s11] "+r"(s[3]), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),       \
        [t4] "=&r"(t4), [t5] "=&r"(t5)
#endif

/**
 * s[2c + r] += sum_i (x_c[i] + x_off) * w_r[i], pixels x_0 = x, x_1 = x + xs, filter rows
 * w_0 = w, w_1 = w + ws: 20 instructions per 16 MACs. with_off = 0 (a constant) drops the
 * offset, which the caller has folded into the bias, and frees its register.
 */
TE_SIMD_INLINE void te_simd_dot_2x2(const int8_t *x, int32_t xs, const int8_t *w, int32_t ws,
                                    int32_t n, int with_off, int32_t x_off2, int32_t s[4])
{
    const int32_t x_off = with_off ? te_simd_lane0(x_off2) : 0;
    int32_t i;
#if TE_SIMD_ASM
    if (n >= 8) {
        const int8_t *const end = x + (n & ~7);
        int32_t t0, t1, t2, t3, t4, t5;
        if (xs == ws && !with_off) {
            __asm__("1:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
                        TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
                    "ldr %[t0], %[end]\n\t"
                    "cmp %[x], %[t0]\n\t"
                    "bne 1b\n\t"
                    : TE_ASM_2X2_OUTS
                    : [st] "r"(xs), [end] "m"(end)
                    : "cc", "memory");
        } else if (xs == ws) {
            __asm__("1:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
                        TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
                    "ldr %[t0], %[end]\n\t"
                    "cmp %[x], %[t0]\n\t"
                    "bne 1b\n\t"
                    : TE_ASM_2X2_OUTS
                    : [st] "r"(xs), [off] "r"(x_off2), [end] "m"(end)
                    : "cc", "memory");
        } else if (!with_off) {
            __asm__("1:\n\t" TE_ASM_STEP_2X2("xs", "ws", TE_ASM_X_PLAIN)
                        TE_ASM_STEP_2X2("xs", "ws", TE_ASM_X_PLAIN)
                    "ldr %[t0], %[end]\n\t"
                    "cmp %[x], %[t0]\n\t"
                    "bne 1b\n\t"
                    : TE_ASM_2X2_OUTS
                    : [xs] "r"(xs), [ws] "r"(ws), [end] "m"(end)
                    : "cc", "memory");
        } else {
            while (x != end) {
                te_simd_step_2x2(&x, xs, &w, ws, with_off, x_off2, s);
                te_simd_step_2x2(&x, xs, &w, ws, with_off, x_off2, s);
            }
        }
    }
    if (n & 4) {
        te_simd_step_2x2(&x, xs, &w, ws, with_off, x_off2, s);
    }
#else
    for (i = n >> 2; i > 0; --i) {
        te_simd_step_2x2(&x, xs, &w, ws, with_off, x_off2, s);
    }
#endif
    for (i = n & 3; i > 0; --i) {
        const int32_t xa = *x + x_off, xb = x[xs] + x_off, wa = *w, wb = w[ws];
        s[0] += xa * wa;
        s[1] += xa * wb;
        s[2] += xb * wa;
        s[3] += xb * wb;
        ++x;
        ++w;
    }
}

/**
 * Pixels x0 and x1 (n int8 values each) plus the input offset, widened to int16 lanes into q
 * in the order te_simd_dot_2x2_q15 reads them: per 4 values four words, x0's even lanes
 * (SXTAB16), x0's odd lanes (ROR #8), then x1's; after them the n % 4 last values of x0 and
 * then of x1 as int16. 4 * n bytes in all. Widened once, a pixel pair's lanes serve every
 * filter row, so the product's inner loop extends only the filter.
 */
TE_SIMD_INLINE void te_simd_widen2(int8_t *q, const int8_t *x0, const int8_t *x1, int32_t n,
                                   int32_t x_off2)
{
    const int32_t x_off = te_simd_lane0(x_off2), r = n & 3;
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        const uint32_t a = TE_SIMD_NEXT4(x0), b = TE_SIMD_NEXT4(x1);
        te_simd_store4(q, (uint32_t)te_sxtab16(x_off2, a));
        te_simd_store4(q + 4, (uint32_t)te_sxtab16_r8(x_off2, a));
        te_simd_store4(q + 8, (uint32_t)te_sxtab16(x_off2, b));
        te_simd_store4(q + 12, (uint32_t)te_sxtab16_r8(x_off2, b));
        q += 16;
    }
    for (i = 0; i < r; ++i) {
        const int16_t u = (int16_t)(x0[i] + x_off), v = (int16_t)(x1[i] + x_off);
        memcpy(q + 2 * i, &u, 2);
        memcpy(q + 2 * (r + i), &v, 2);
    }
}

/** The int16 lane k of q. */
TE_SIMD_INLINE int32_t te_simd_q15_at(const int8_t *q, int32_t k)
{
    int16_t v;
    memcpy(&v, q + 2 * k, 2);
    return v;
}

/**
 * s[2c + r] += sum_i x_c[i] * w_r[i] over n values, the pixels x_0, x_1 widened in q (offset
 * included) by te_simd_widen2, filter rows w_0 = w, w_1 = w + ws: per 4 values 4 loads of
 * widened lanes, 2 of the filter, 4 extensions and 8 SMLADs for 16 MACs.
 */
TE_SIMD_INLINE void te_simd_dot_2x2_q15(const int8_t *q, const int8_t *w, int32_t ws, int32_t n,
                                        int32_t s[4])
{
    const int32_t r = n & 3;
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        uint32_t t = te_simd_load4(w + ws);
        const int32_t wb_e = te_sxtb16(t), wb_o = te_sxtb16_r8(t);
        const int32_t xa = (int32_t)te_simd_load4(q), xb = (int32_t)te_simd_load4(q + 4);
        const int32_t xc = (int32_t)te_simd_load4(q + 8), xd = (int32_t)te_simd_load4(q + 12);
        int32_t wa_e, wa_o;
        s[1] = te_smlad(xa, wb_e, te_smlad(xb, wb_o, s[1]));
        s[3] = te_smlad(xc, wb_e, te_smlad(xd, wb_o, s[3]));
        t = TE_SIMD_NEXT4(w);
        wa_e = te_sxtb16(t);
        wa_o = te_sxtb16_r8(t);
        s[0] = te_smlad(xa, wa_e, te_smlad(xb, wa_o, s[0]));
        s[2] = te_smlad(xc, wa_e, te_smlad(xd, wa_o, s[2]));
        q += 16;
    }
    for (i = 0; i < r; ++i) {
        const int32_t a = te_simd_q15_at(q, i), b = te_simd_q15_at(q, r + i);
        s[0] += a * w[i];
        s[1] += a * w[ws + i];
        s[2] += b * w[i];
        s[3] += b * w[ws + i];
    }
}

/**
 * One pixel times rows w0 and w0 + ws, both with offsets (the fully-connected layer's weights
 * may have a zero point): 13 instructions per 8 MACs.
 */
TE_SIMD_INLINE void te_simd_dot_1x2(const int8_t *x, const int8_t *w0, int32_t ws, int32_t n,
                                    int32_t x_off2, int32_t w_off2, int32_t s[2])
{
    int32_t s0 = s[0], s1 = s[1];
    const int32_t x_off = te_simd_lane0(x_off2), w_off = te_simd_lane0(w_off2);
    const int8_t *w1 = w0 + ws;
    const int8_t *const end = x + (n & ~3);
    int32_t i;
    while (x != end) {
        uint32_t t = TE_SIMD_NEXT4(x);
        const int32_t x_e = te_sxtab16(x_off2, t), x_o = te_sxtab16_r8(x_off2, t);
        t = TE_SIMD_NEXT4(w0);
        s0 = te_smlad(x_e, te_sxtab16(w_off2, t), te_smlad(x_o, te_sxtab16_r8(w_off2, t), s0));
        t = TE_SIMD_NEXT4(w1);
        s1 = te_smlad(x_e, te_sxtab16(w_off2, t), te_smlad(x_o, te_sxtab16_r8(w_off2, t), s1));
    }
    for (i = n & 3; i > 0; --i) {
        const int32_t v = *x++ + x_off;
        s0 += v * (*w0++ + w_off);
        s1 += v * (*w1++ + w_off);
    }
    s[0] = s0;
    s[1] = s1;
}

/** Pixels x0 and x0 + xs times one filter row, input offset by SXTAB16. */
TE_SIMD_INLINE void te_simd_dot_2x1(const int8_t *x0, int32_t xs, const int8_t *w, int32_t n,
                                    int32_t x_off2, int32_t s[2])
{
    int32_t s0 = s[0], s1 = s[1];
    const int32_t x_off = te_simd_lane0(x_off2);
    const int8_t *const end = x0 + (n & ~3);
    int32_t i;
    while (x0 != end) {
        uint32_t t = TE_SIMD_NEXT4(w);
        const int32_t w_e = te_sxtb16(t), w_o = te_sxtb16_r8(t);
        t = te_simd_load4(x0 + xs);
        s1 = te_smlad(te_sxtab16(x_off2, t), w_e, te_smlad(te_sxtab16_r8(x_off2, t), w_o, s1));
        t = TE_SIMD_NEXT4(x0);
        s0 = te_smlad(te_sxtab16(x_off2, t), w_e, te_smlad(te_sxtab16_r8(x_off2, t), w_o, s0));
    }
    for (i = n & 3; i > 0; --i) {
        const int32_t v = *w++;
        s0 += (*x0 + x_off) * v;
        s1 += (x0[xs] + x_off) * v;
        ++x0;
    }
    s[0] = s0;
    s[1] = s1;
}

/** One pixel times one filter row, both offsets by SXTAB16. */
TE_SIMD_INLINE int32_t te_simd_dot_1x1(const int8_t *x, const int8_t *w, int32_t n,
                                       int32_t x_off2, int32_t w_off2, int32_t s)
{
    const int32_t x_off = te_simd_lane0(x_off2), w_off = te_simd_lane0(w_off2);
    const int8_t *const end = x + (n & ~3);
    int32_t i;
    while (x != end) {
        const uint32_t a = TE_SIMD_NEXT4(x), b = TE_SIMD_NEXT4(w);
        s = te_smlad(te_sxtab16(x_off2, a), te_sxtab16(w_off2, b),
                     te_smlad(te_sxtab16_r8(x_off2, a), te_sxtab16_r8(w_off2, b), s));
    }
    for (i = n & 3; i > 0; --i) {
        s += (*x++ + x_off) * (*w++ + w_off);
    }
    return s;
}

/** Sum of n int8 values (a filter row, for folding the input offset into the bias). */
TE_SIMD_INLINE int32_t te_simd_sum(const int8_t *w, int32_t n)
{
    const int32_t ones = 0x00010001;
    const int8_t *const end = w + (n & ~3);
    int32_t i, s = 0;
    while (w != end) {
        const uint32_t t = TE_SIMD_NEXT4(w);
        s = te_smlad(te_sxtb16(t), ones, te_smlad(te_sxtb16_r8(t), ones, s));
    }
    for (i = n & 3; i > 0; --i) {
        s += *w++;
    }
    return s;
}

#endif /* TE_SIMD */

#endif /* TE_SIMD_H */
