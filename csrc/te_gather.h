/**
 * @file te_gather.h
 * @brief The strided 5-D gather that TRANSPOSE and STRIDED_SLICE both are: output element
 * (a, b, c, d, e), in row-major order, is input[offset + a*step[0] + ... + e*step[4]].
 *
 * The callers check that every index lies inside the input before calling (steps may be
 * negative for STRIDED_SLICE). Rows whose innermost step is 1 are copied with memcpy.
 */
#ifndef TE_GATHER_H
#define TE_GATHER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void te_gather5_s8(const int8_t *input, ptrdiff_t offset, const int32_t *count,
                                 const int32_t *step, int8_t *output)
{
    const int32_t *n = count, *s = step;
    int32_t a, b, c, d, e;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    const int8_t *src = input + (offset + (ptrdiff_t)a * s[0] +
                                                 (ptrdiff_t)b * s[1] + (ptrdiff_t)c * s[2] +
                                                 (ptrdiff_t)d * s[3]);
                    if (s[4] == 1) {
                        memcpy(output, src, (size_t)n[4]);
                    } else {
                        for (e = 0; e < n[4]; ++e) {
                            output[e] = src[(ptrdiff_t)e * s[4]];
                        }
                    }
                    output += n[4];
                }
            }
        }
    }
}

#endif /* TE_GATHER_H */
