#include "te_resize.h"

#include <string.h>

#define TE_RESIZE_ONE 1024 /* weight unit: 2^10 */

static te_status_t te_resize_check(const te_resize_params_t *p, const int8_t *input,
                                   const int32_t *lut_y, const int32_t *lut_x,
                                   const int8_t *output)
{
    if (p == NULL || input == NULL || lut_y == NULL || lut_x == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->input.n < 1 || p->input.h < 1 || p->input.w < 1 || p->input.c < 1 ||
        p->output.h < 1 || p->output.w < 1 || p->output.n != p->input.n ||
        p->output.c != p->input.c) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

/* A (lo, hi, weight) triple of the bilinear tables is usable: both indices inside the input,
 * and a weight that keeps the interpolation a convex combination (a negative one only where
 * both taps are the same pixel). */
static int te_resize_tap_valid(const int32_t *t, int32_t size)
{
    return t[0] >= 0 && t[0] < size && t[1] >= 0 && t[1] < size && t[2] > -TE_RESIZE_ONE &&
           t[2] < TE_RESIZE_ONE && (t[2] >= 0 || t[0] == t[1]);
}

te_status_t te_resize_nearest_s8(const te_resize_params_t *p, const int8_t *input,
                                 const int32_t *in_y, const int32_t *in_x, int8_t *output)
{
    int32_t b, y, x;
    const te_status_t st = te_resize_check(p, input, in_y, in_x, output);
    if (st != TE_OK) {
        return st;
    }
    for (y = 0; y < p->output.h; ++y) {
        if (in_y[y] < 0 || in_y[y] >= p->input.h) {
            return TE_ERR_ARG;
        }
    }
    for (x = 0; x < p->output.w; ++x) {
        if (in_x[x] < 0 || in_x[x] >= p->input.w) {
            return TE_ERR_ARG;
        }
    }
    for (b = 0; b < p->output.n; ++b) {
        const int8_t *in_b = input + (size_t)b * p->input.h * p->input.w * p->input.c;
        for (y = 0; y < p->output.h; ++y) {
            const int8_t *in_row = in_b + (size_t)in_y[y] * p->input.w * p->input.c;
            for (x = 0; x < p->output.w; ++x) {
                memcpy(output, in_row + (size_t)in_x[x] * p->input.c, (size_t)p->input.c);
                output += p->input.c;
            }
        }
    }
    return TE_OK;
}

/* The int8 part: four taps of one channel run, weights in 1/1024 units. */
static void te_resize_bilinear_px_s8(const int8_t *v00, const int8_t *v10, const int8_t *v01,
                                     const int8_t *v11, int32_t wy, int32_t wx, int32_t depth,
                                     int8_t *out)
{
    const int64_t w00 = (int64_t)(TE_RESIZE_ONE - wy) * (TE_RESIZE_ONE - wx);
    const int64_t w10 = (int64_t)wy * (TE_RESIZE_ONE - wx);
    const int64_t w01 = (int64_t)(TE_RESIZE_ONE - wy) * wx;
    const int64_t w11 = (int64_t)wy * wx;
    int32_t c;
    for (c = 0; c < depth; ++c) {
        const int64_t s = v00[c] * w00 + v10[c] * w10 + v01[c] * w01 + v11[c] * w11;
        const int64_t half = (int64_t)1 << 19;
        out[c] = (int8_t)((s + (s > 0 ? half : -half)) / ((int64_t)1 << 20));
    }
}

te_status_t te_resize_bilinear_s8(const te_resize_params_t *p, const int8_t *input,
                                  const int32_t *y_lut, const int32_t *x_lut, int8_t *output)
{
    int32_t b, y, x;
    const te_status_t st = te_resize_check(p, input, y_lut, x_lut, output);
    if (st != TE_OK) {
        return st;
    }
    for (y = 0; y < p->output.h; ++y) {
        if (!te_resize_tap_valid(y_lut + 3 * y, p->input.h)) {
            return TE_ERR_ARG;
        }
    }
    for (x = 0; x < p->output.w; ++x) {
        if (!te_resize_tap_valid(x_lut + 3 * x, p->input.w)) {
            return TE_ERR_ARG;
        }
    }
    for (b = 0; b < p->output.n; ++b) {
        const int8_t *in_b = input + (size_t)b * p->input.h * p->input.w * p->input.c;
        for (y = 0; y < p->output.h; ++y) {
            const int32_t *ty = y_lut + 3 * y;
            const int8_t *row0 = in_b + (size_t)ty[0] * p->input.w * p->input.c;
            const int8_t *row1 = in_b + (size_t)ty[1] * p->input.w * p->input.c;
            for (x = 0; x < p->output.w; ++x) {
                const int32_t *tx = x_lut + 3 * x;
                const size_t c0 = (size_t)tx[0] * p->input.c, c1 = (size_t)tx[1] * p->input.c;
                te_resize_bilinear_px_s8(row0 + c0, row1 + c0, row0 + c1, row1 + c1, ty[2],
                                         tx[2], p->input.c, output);
                output += p->input.c;
            }
        }
    }
    return TE_OK;
}
