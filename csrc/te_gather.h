/**
 * @file te_gather.h
 * @brief The strided 5-D gather that TRANSPOSE and STRIDED_SLICE both are: output element
 * (a, b, c, d, e), in row-major order, is input[offset + a*step[0] + ... + e*step[4]].
 *
 * Offsets and steps count elements, not bytes; the element size is 1 (int8) or 2 (int16), so
 * one walk serves both types. The callers check that every index lies inside the input before
 * calling (steps may be negative for STRIDED_SLICE). Rows whose innermost step is 1 are copied
 * with memcpy.
 */
#ifndef TE_GATHER_H
#define TE_GATHER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void te_gather5(const void *input, ptrdiff_t offset, const int32_t *count,
                              const int32_t *step, void *output, size_t elem_bytes)
{
    const int32_t *n = count, *s = step;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const size_t row = (size_t)n[4] * elem_bytes;
    int32_t a, b, c, d, e;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    const ptrdiff_t first = offset + (ptrdiff_t)a * s[0] + (ptrdiff_t)b * s[1] +
                                            (ptrdiff_t)c * s[2] + (ptrdiff_t)d * s[3];
                    if (s[4] == 1) {
                        memcpy(out, in + first * (ptrdiff_t)elem_bytes, row);
                    } else if (elem_bytes == 1) {
                        const int8_t *src = (const int8_t *)input + first;
                        int8_t *dst = (int8_t *)(void *)out;
                        for (e = 0; e < n[4]; ++e) {
                            dst[e] = src[(ptrdiff_t)e * s[4]];
                        }
                    } else {
                        /* The caller passes int16 tensors through 2-byte aligned pointers. */
                        const int16_t *src = (const int16_t *)input + first;
                        int16_t *dst = (int16_t *)(void *)out;
                        for (e = 0; e < n[4]; ++e) {
                            dst[e] = src[(ptrdiff_t)e * s[4]];
                        }
                    }
                    out += row;
                }
            }
        }
    }
}

#endif /* TE_GATHER_H */
