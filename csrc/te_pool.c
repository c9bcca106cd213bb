#include "te_pool.h"

/* Channels whose sums te_mean_s8 / _s16 keep at once; bounds their stack use to
 * 4 * TE_MEAN_BLOCK bytes. */
#define TE_MEAN_BLOCK 16

static int te_dims_valid(const te_dims_t *d)
{
    return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

/* Valid pooling parameters for an activation type whose range is [lo, hi]. */
static int te_pool_valid(const te_pool_params_t *p, int32_t lo, int32_t hi)
{
    return te_dims_valid(&p->input) && te_dims_valid(&p->output) &&
           p->input.n == p->output.n && p->input.c == p->output.c && p->filter_h >= 1 &&
           p->filter_w >= 1 && p->stride_h >= 1 && p->stride_w >= 1 && p->pad_h >= 0 &&
           p->pad_w >= 0 && p->act_min >= lo && p->act_max <= hi && p->act_min <= p->act_max;
}

static int32_t te_max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static int32_t te_min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

/* The part [start, end) of a window starting at `origin` that lies inside [0, size). */
typedef struct {
    int32_t origin;
    int32_t start;
    int32_t end;
} te_span_t;

static te_span_t te_window_span(int32_t out_index, int32_t stride, int32_t pad, int32_t filter,
                                int32_t size)
{
    te_span_t s;
    s.origin = out_index * stride - pad;
    s.start = te_max_i32(0, -s.origin);
    s.end = te_min_i32(filter, size - s.origin);
    return s;
}

/* Round half away from zero; C division truncates toward zero. */
static int32_t te_pool_average(int32_t acc, int32_t count)
{
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

/* The pooling kernels are one loop each over the element type T, instantiated below for int8
 * and int16 (the types differ only in their range, and int16 average pooling refuses windows
 * whose int32 sum could overflow, as TFLite's would). */
static int te_window_count_ok(int32_t count, int32_t max_count)
{
    return count <= max_count;
}

#define TE_AVGPOOL_BODY(T, LO, HI, MAX_COUNT)                                                     \
    int32_t b, oy, ox, ch, fy, fx;                                                                \
    if (p == NULL || input == NULL || output == NULL || !te_pool_valid(p, LO, HI)) {             \
        return TE_ERR_ARG;                                                                        \
    }                                                                                             \
    for (b = 0; b < p->output.n; ++b) {                                                           \
        for (oy = 0; oy < p->output.h; ++oy) {                                                    \
            const te_span_t y =                                                                   \
                te_window_span(oy, p->stride_h, p->pad_h, p->filter_h, p->input.h);               \
            for (ox = 0; ox < p->output.w; ++ox) {                                                \
                const te_span_t x =                                                               \
                    te_window_span(ox, p->stride_w, p->pad_w, p->filter_w, p->input.w);           \
                const int32_t count = (y.end - y.start) * (x.end - x.start);                      \
                T *out_px = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;   \
                /* An empty window fails in TFLite too. */                                        \
                if (y.end <= y.start || x.end <= x.start ||                                       \
                    !te_window_count_ok(count, MAX_COUNT)) {                                      \
                    return TE_ERR_ARG;                                                            \
                }                                                                                 \
                for (ch = 0; ch < p->output.c; ++ch) {                                            \
                    int32_t acc = 0;                                                              \
                    for (fy = y.start; fy < y.end; ++fy) {                                        \
                        const T *in_row =                                                         \
                            input + ((b * p->input.h + y.origin + fy) * p->input.w + x.origin) *  \
                                        p->input.c + ch;                                          \
                        for (fx = x.start; fx < x.end; ++fx) {                                    \
                            acc += in_row[fx * p->input.c];                                       \
                        }                                                                         \
                    }                                                                             \
                    out_px[ch] =                                                                  \
                        (T)te_clamp(te_pool_average(acc, count), p->act_min, p->act_max);         \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    return TE_OK

/* TFLite's max pooling starts from the type's minimum (LO). */
#define TE_MAXPOOL_BODY(T, LO, HI)                                                                \
    int32_t b, oy, ox, ch, fy, fx;                                                                \
    if (p == NULL || input == NULL || output == NULL || !te_pool_valid(p, LO, HI)) {             \
        return TE_ERR_ARG;                                                                        \
    }                                                                                             \
    for (b = 0; b < p->output.n; ++b) {                                                           \
        for (oy = 0; oy < p->output.h; ++oy) {                                                    \
            const te_span_t y =                                                                   \
                te_window_span(oy, p->stride_h, p->pad_h, p->filter_h, p->input.h);               \
            for (ox = 0; ox < p->output.w; ++ox) {                                                \
                const te_span_t x =                                                               \
                    te_window_span(ox, p->stride_w, p->pad_w, p->filter_w, p->input.w);           \
                T *out_px = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;   \
                for (ch = 0; ch < p->output.c; ++ch) {                                            \
                    int32_t mx = LO;                                                              \
                    for (fy = y.start; fy < y.end; ++fy) {                                        \
                        const T *in_row =                                                         \
                            input + ((b * p->input.h + y.origin + fy) * p->input.w + x.origin) *  \
                                        p->input.c + ch;                                          \
                        for (fx = x.start; fx < x.end; ++fx) {                                    \
                            mx = te_max_i32(mx, in_row[fx * p->input.c]);                         \
                        }                                                                         \
                    }                                                                             \
                    out_px[ch] = (T)te_clamp(mx, p->act_min, p->act_max);                         \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    return TE_OK

te_status_t te_avgpool_s8(const te_avgpool_params_t *p, const int8_t *input, int8_t *output)
{
    TE_AVGPOOL_BODY(int8_t, -128, 127, INT32_MAX);
}

te_status_t te_avgpool_s16(const te_avgpool_params_t *p, const int16_t *input, int16_t *output)
{
    TE_AVGPOOL_BODY(int16_t, -32768, 32767, TE_AVGPOOL_S16_MAX_COUNT);
}

te_status_t te_maxpool_s8(const te_maxpool_params_t *p, const int8_t *input, int8_t *output)
{
    TE_MAXPOOL_BODY(int8_t, -128, 127);
}

te_status_t te_maxpool_s16(const te_maxpool_params_t *p, const int16_t *input, int16_t *output)
{
    TE_MAXPOOL_BODY(int16_t, -32768, 32767);
}

/* Valid MEAN parameters for an activation type whose range is [lo, hi]. */
static int te_mean_valid(const te_mean_params_t *p, int32_t lo, int32_t hi)
{
    return te_dims_valid(&p->input) && p->output.n == p->input.n && p->output.h == 1 &&
           p->output.w == 1 && p->output.c == p->input.c && p->multiplier >= 0 &&
           p->shift >= -31 && p->shift <= 30 && p->q.act_min >= lo && p->q.act_max <= hi &&
           p->q.act_min <= p->q.act_max;
}

/* The requantised mean of one channel's sum. TFLM sums in int32 with wrap-around and subtracts
 * zp * count; the callers' unsigned arithmetic gives the same bits without signed overflow. */
static int32_t te_mean_requantize(const te_mean_params_t *p, uint32_t acc)
{
    const int32_t y = te_multiply_by_quantized_multiplier((int32_t)acc, p->multiplier, p->shift) +
                      p->q.output_offset;
    return te_clamp(y, p->q.act_min, p->q.act_max);
}

/* One loop over the element type T for both MEAN kernels. */
#define TE_MEAN_BODY(T, LO, HI)                                                                   \
    int32_t b, c0, i, k, n_px, block;                                                             \
    uint32_t acc[TE_MEAN_BLOCK];                                                                  \
    uint32_t zp_total;                                                                            \
    if (p == NULL || input == NULL || output == NULL || !te_mean_valid(p, LO, HI)) {             \
        return TE_ERR_ARG;                                                                        \
    }                                                                                             \
    n_px = p->input.h * p->input.w;                                                               \
    zp_total = (uint32_t)p->q.input_offset * (uint32_t)n_px;                                      \
    for (b = 0; b < p->input.n; ++b) {                                                            \
        const T *in_b = input + b * n_px * p->input.c;                                            \
        for (c0 = 0; c0 < p->input.c; c0 += TE_MEAN_BLOCK) {                                      \
            block = te_min_i32(TE_MEAN_BLOCK, p->input.c - c0);                                   \
            for (k = 0; k < block; ++k) {                                                         \
                acc[k] = zp_total;                                                                \
            }                                                                                     \
            for (i = 0; i < n_px; ++i) {                                                          \
                const T *px = in_b + i * p->input.c + c0;                                         \
                for (k = 0; k < block; ++k) {                                                     \
                    acc[k] += (uint32_t)(int32_t)px[k];                                           \
                }                                                                                 \
            }                                                                                     \
            for (k = 0; k < block; ++k) {                                                         \
                output[b * p->input.c + c0 + k] = (T)te_mean_requantize(p, acc[k]);              \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    return TE_OK

te_status_t te_mean_s8(const te_mean_params_t *p, const int8_t *input, int8_t *output)
{
    TE_MEAN_BODY(int8_t, -128, 127);
}

te_status_t te_mean_s16(const te_mean_params_t *p, const int16_t *input, int16_t *output)
{
    TE_MEAN_BODY(int16_t, -32768, 32767);
}
