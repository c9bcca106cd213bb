#include <string.h>

#include "te_depth_space.h"

static int dims_positive(const te_dims_t *d)
{
    return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

/* `deep` is the tensor with b * b times the channels of `wide`, which is b times taller and
 * wider: the output of SPACE_TO_DEPTH or the input of DEPTH_TO_SPACE. */
static int shapes_ok(const te_depth_space_params_t *p, const te_dims_t *deep,
                     const te_dims_t *wide)
{
    const int32_t b = p->block_size;
    return b >= 1 && dims_positive(deep) && dims_positive(wide) && deep->n == wide->n &&
           (int64_t)deep->h * b == wide->h && (int64_t)deep->w * b == wide->w &&
           (int64_t)wide->c * b * b == deep->c;
}

/*
 * Both ops pair each run of `wide.c` elements of the wide tensor with one run in the deep
 * tensor; `to_wide` says which way the bytes go. Independent of the element type.
 */
static void move_runs(const te_depth_space_params_t *p, const te_dims_t *deep,
                      const te_dims_t *wide, const void *src, void *dst, int to_wide,
                      size_t elem_bytes)
{
    const int32_t b = p->block_size;
    const size_t run = (size_t)wide->c * elem_bytes;
    int32_t n, h, w;
    for (n = 0; n < wide->n; ++n) {
        for (h = 0; h < wide->h; ++h) {
            for (w = 0; w < wide->w; ++w) {
                const size_t wide_at =
                    (((size_t)n * (size_t)wide->h + (size_t)h) * (size_t)wide->w + (size_t)w) *
                    run;
                const size_t deep_at =
                    ((((size_t)n * (size_t)deep->h + (size_t)(h / b)) * (size_t)deep->w +
                      (size_t)(w / b)) * (size_t)deep->c +
                     (size_t)((h % b) * b + w % b) * (size_t)wide->c) * elem_bytes;
                if (to_wide) {
                    memcpy((uint8_t *)dst + wide_at, (const uint8_t *)src + deep_at, run);
                } else {
                    memcpy((uint8_t *)dst + deep_at, (const uint8_t *)src + wide_at, run);
                }
            }
        }
    }
}

te_status_t te_depth_to_space_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL ||
        !shapes_ok(p, &p->input, &p->output)) {
        return TE_ERR_ARG;
    }
    move_runs(p, &p->input, &p->output, input, output, 1, sizeof(int8_t));
    return TE_OK;
}

te_status_t te_space_to_depth_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL ||
        !shapes_ok(p, &p->output, &p->input)) {
        return TE_ERR_ARG;
    }
    move_runs(p, &p->output, &p->input, input, output, 0, sizeof(int8_t));
    return TE_OK;
}
