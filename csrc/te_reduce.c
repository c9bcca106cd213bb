#include "te_reduce.h"

#include "te_pool.h"

/* Dtype-independent part: validate the layout and the limits (within [lo, hi], the type's
 * range) and derive row-major strides, the number of summed elements per output (count) and
 * the number of outputs. */
static te_status_t te_reduce_layout(const te_reduce_params_t *p, int32_t lo, int32_t hi,
                                    int32_t stride[], int32_t *count, int32_t *n_out)
{
    int32_t a;
    int64_t total = 1, reduced = 1, kept = 1;
    if (p->rank < 1 || p->rank > TE_REDUCE_MAX_DIMS || p->multiplier < 0 || p->shift < -31 ||
        p->shift > 30 || p->q.act_min < lo || p->q.act_max > hi ||
        p->q.act_min > p->q.act_max) {
        return TE_ERR_ARG;
    }
    for (a = p->rank - 1; a >= 0; --a) {
        if (p->dims[a] < 1 || (p->reduced[a] != 0 && p->reduced[a] != 1)) {
            return TE_ERR_ARG;
        }
        stride[a] = (int32_t)total;
        total *= p->dims[a];
        if (total > INT32_MAX) {
            return TE_ERR_ARG;
        }
        if (p->reduced[a]) {
            reduced *= p->dims[a];
        } else {
            kept *= p->dims[a];
        }
    }
    *count = (int32_t)reduced;
    *n_out = (int32_t)kept;
    return TE_OK;
}

/* Advance the odometer `idx` over the axes whose reduced flag equals `which` (last axis
 * fastest); returns the change in input offset. */
static int32_t te_reduce_step(const te_reduce_params_t *p, const int32_t stride[], int32_t idx[],
                              int32_t which)
{
    int32_t a, delta = 0;
    for (a = p->rank - 1; a >= 0; --a) {
        if (p->reduced[a] != which) {
            continue;
        }
        if (++idx[a] < p->dims[a]) {
            return delta + stride[a];
        }
        delta -= (p->dims[a] - 1) * stride[a];
        idx[a] = 0;
    }
    return delta;
}

/* The general reduction for either type: exactly one of in8 / in16 and of out8 / out16 is
 * used. Reading through the type test costs little next to the strided odometer walk. */
static te_status_t te_reduce_any(const te_reduce_params_t *p, const int8_t *in8,
                                 const int16_t *in16, int8_t *out8, int16_t *out16)
{
    int32_t stride[TE_REDUCE_MAX_DIMS];
    int32_t kept_idx[TE_REDUCE_MAX_DIMS] = {0};
    int32_t red_idx[TE_REDUCE_MAX_DIMS];
    int32_t count, n_out, o, r, a, base = 0;
    uint32_t zp_total;
    const te_status_t st = in16 != NULL
                               ? te_reduce_layout(p, -32768, 32767, stride, &count, &n_out)
                               : te_reduce_layout(p, -128, 127, stride, &count, &n_out);
    if (st != TE_OK) {
        return st;
    }
    /* TFLM sums in wrapping int32 and subtracts zp * count; unsigned arithmetic gives the same
     * bits without signed overflow. */
    zp_total = (uint32_t)p->q.input_offset * (uint32_t)count;
    for (o = 0; o < n_out; ++o) {
        uint32_t acc = zp_total;
        int32_t off = base, y;
        for (a = 0; a < p->rank; ++a) {
            red_idx[a] = 0;
        }
        for (r = 0; r < count; ++r) {
            acc += (uint32_t)(in16 != NULL ? (int32_t)in16[off] : (int32_t)in8[off]);
            off += te_reduce_step(p, stride, red_idx, 1);
        }
        y = te_multiply_by_quantized_multiplier((int32_t)acc, p->multiplier, p->shift) +
            p->q.output_offset;
        y = te_clamp(y, p->q.act_min, p->q.act_max);
        if (out16 != NULL) {
            out16[o] = (int16_t)y;
        } else {
            out8[o] = (int8_t)y;
        }
        base += te_reduce_step(p, stride, kept_idx, 0);
    }
    return TE_OK;
}

te_status_t te_reduce_s8(const te_reduce_params_t *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    return te_reduce_any(p, input, NULL, output, NULL);
}

te_status_t te_reduce_s16(const te_reduce_params_t *p, const int16_t *input, int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    return te_reduce_any(p, NULL, input, NULL, output);
}

/* te_mean's view [outer][run][inner] of a reduction whose reduced axes of size > 1 are
 * contiguous; returns 0 when they are not (two separate reduced runs), -1 for bad parameters. */
static int te_reduce_as_mean(const te_reduce_params_t *p, te_mean_params_t *mp)
{
    /* outer = kept elements before the first reduced axis of size > 1, inner = after the
     * last; the run between them must hold no kept axis of size > 1. */
    int32_t a, first = -1, last = -1;
    int64_t outer = 1, run = 1, inner = 1;
    if (p->rank < 1 || p->rank > TE_REDUCE_MAX_DIMS) {
        return -1;
    }
    for (a = 0; a < p->rank; ++a) {
        if (p->reduced[a] != 0 && p->reduced[a] != 1) {
            return -1;
        }
        if (p->reduced[a] == 1 && p->dims[a] > 1) {
            first = first < 0 ? a : first;
            last = a;
        }
    }
    for (a = 0; a < p->rank; ++a) {
        if (first >= 0 && a >= first && a <= last) {
            if (p->reduced[a] != 1 && p->dims[a] > 1) {
                return 0;
            }
            run *= p->dims[a];
        } else if (first < 0 || a < first) {
            outer *= p->dims[a];
        } else {
            inner *= p->dims[a];
        }
        if (p->dims[a] < 1 || outer * run * inner > INT32_MAX) {
            return -1;
        }
    }
    mp->input.n = (int32_t)outer;
    mp->input.h = (int32_t)run;
    mp->input.w = 1;
    mp->input.c = (int32_t)inner;
    mp->output.n = (int32_t)outer;
    mp->output.h = 1;
    mp->output.w = 1;
    mp->output.c = (int32_t)inner;
    mp->q = p->q;
    mp->multiplier = p->multiplier;
    mp->shift = p->shift;
    return 1;
}

te_status_t te_reduce_wrapper_s8(const te_reduce_params_t *p, const int8_t *input,
                                 int8_t *output)
{
    te_mean_params_t mp;
    int fits;
    if (p == NULL) {
        return TE_ERR_ARG;
    }
    fits = te_reduce_as_mean(p, &mp);
    if (fits < 0) {
        return TE_ERR_ARG;
    }
    return fits ? te_mean_s8(&mp, input, output) : te_reduce_s8(p, input, output);
}

te_status_t te_reduce_wrapper_s16(const te_reduce_params_t *p, const int16_t *input,
                                  int16_t *output)
{
    te_mean_params_t mp;
    int fits;
    if (p == NULL) {
        return TE_ERR_ARG;
    }
    fits = te_reduce_as_mean(p, &mp);
    if (fits < 0) {
        return TE_ERR_ARG;
    }
    return fits ? te_mean_s16(&mp, input, output) : te_reduce_s16(p, input, output);
}
