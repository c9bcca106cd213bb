#include "te_reduce.h"

#include "te_pool.h"

/* Dtype-independent part: validate the layout and derive row-major strides, the number of
 * summed elements per output (count) and the number of outputs. */
static te_status_t te_reduce_layout(const te_reduce_params_t *p, int32_t stride[],
                                    int32_t *count, int32_t *n_out)
{
    int32_t a;
    int64_t total = 1, reduced = 1, kept = 1;
    if (p->rank < 1 || p->rank > TE_REDUCE_MAX_DIMS || p->multiplier < 0 || p->shift < -31 ||
        p->shift > 30 || p->q.act_min < -128 || p->q.act_max > 127 ||
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

te_status_t te_reduce_s8(const te_reduce_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t stride[TE_REDUCE_MAX_DIMS];
    int32_t kept_idx[TE_REDUCE_MAX_DIMS] = {0};
    int32_t red_idx[TE_REDUCE_MAX_DIMS];
    int32_t count, n_out, o, r, a, base = 0;
    uint32_t zp_total;
    te_status_t st;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    st = te_reduce_layout(p, stride, &count, &n_out);
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
            acc += (uint32_t)(int32_t)input[off];
            off += te_reduce_step(p, stride, red_idx, 1);
        }
        y = te_multiply_by_quantized_multiplier((int32_t)acc, p->multiplier, p->shift) +
            p->q.output_offset;
        output[o] = (int8_t)te_clamp(y, p->q.act_min, p->q.act_max);
        base += te_reduce_step(p, stride, kept_idx, 0);
    }
    return TE_OK;
}

te_status_t te_reduce_wrapper_s8(const te_reduce_params_t *p, const int8_t *input,
                                 int8_t *output)
{
    /* outer = kept elements before the first reduced axis of size > 1, inner = after the
     * last; the run between them must hold no kept axis of size > 1. */
    int32_t a, first = -1, last = -1;
    int64_t outer = 1, run = 1, inner = 1;
    te_mean_params_t mp;
    if (p == NULL || p->rank < 1 || p->rank > TE_REDUCE_MAX_DIMS) {
        return TE_ERR_ARG;
    }
    for (a = 0; a < p->rank; ++a) {
        if (p->reduced[a] != 0 && p->reduced[a] != 1) {
            return TE_ERR_ARG;
        }
        if (p->reduced[a] == 1 && p->dims[a] > 1) {
            first = first < 0 ? a : first;
            last = a;
        }
    }
    for (a = 0; a < p->rank; ++a) {
        if (first >= 0 && a >= first && a <= last) {
            if (p->reduced[a] != 1 && p->dims[a] > 1) {
                return te_reduce_s8(p, input, output); /* two separate reduced runs */
            }
            run *= p->dims[a];
        } else if (first < 0 || a < first) {
            outer *= p->dims[a];
        } else {
            inner *= p->dims[a];
        }
        if (p->dims[a] < 1 || outer * run * inner > INT32_MAX) {
            return TE_ERR_ARG;
        }
    }
    mp.input.n = (int32_t)outer;
    mp.input.h = (int32_t)run;
    mp.input.w = 1;
    mp.input.c = (int32_t)inner;
    mp.output.n = (int32_t)outer;
    mp.output.h = 1;
    mp.output.w = 1;
    mp.output.c = (int32_t)inner;
    mp.q = p->q;
    mp.multiplier = p->multiplier;
    mp.shift = p->shift;
    return te_mean_s8(&mp, input, output);
}
