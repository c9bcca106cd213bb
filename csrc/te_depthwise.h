/**
 * @file te_depthwise.h
 * @brief Depthwise convolution (TFLite DEPTHWISE_CONV_2D), NHWC activations, 1HWC filters: int8,
 *        and 16x8 (int16 activations, int8 weights, int64 bias) through te_depthwise_conv_s16.
 *
 * Output channel oc = ic * depth_multiplier + m is input channel ic convolved with filter
 * channel oc, as TFLite's reference_integer_ops::DepthwiseConvPerChannel.
 */
#ifndef TE_DEPTHWISE_H
#define TE_DEPTHWISE_H

#include "te_common.h"

typedef struct {
    te_dims_t input;          /**< n, h, w, c of the input */
    te_dims_t filter;         /**< n = 1, h, w, c = input channels * depth_multiplier */
    te_dims_t output;         /**< n = input n, h, w, c = filter c */
    int32_t depth_multiplier; /**< >= 1 */
    int32_t stride_h;         /**< >= 1 */
    int32_t stride_w;         /**< >= 1 */
    int32_t dilation_h;       /**< >= 1 */
    int32_t dilation_w;       /**< >= 1 */
    int32_t pad_h;            /**< top padding, >= 0 (TFLite puts the odd pixel at the bottom) */
    int32_t pad_w;            /**< left padding, >= 0 */
    te_quant_t q;
    te_requant_t rq;          /**< indexed by output channel when per_channel */
} te_depthwise_conv_params_t;

/**
 * Generic depthwise convolution: any kernel size, stride, dilation, padding and multiplier,
 * through the path te_depthwise_path_s8 picks (see te_depthwise_path_t).
 * @param input  int8 [input.n][input.h][input.w][input.c]
 * @param filter int8 [1][filter.h][filter.w][filter.c]
 * @param bias   int32 [filter.c], or NULL
 * @param output int8 [output.n][output.h][output.w][output.c]
 * @return TE_OK, or TE_ERR_ARG for null pointers or mismatched dimensions.
 */
te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output);

/**
 * 3x3 depthwise convolution with the tap window hoisted out of the channel loop.
 * Domain: depth_multiplier 1, 3x3 filter, dilation 1, 0 <= pad_h <= 1, 0 <= pad_w <= 1 (any
 * stride). Returns TE_ERR_ARG outside that domain rather than computing a wrong answer.
 * Arguments as te_depthwise_conv_s8.
 */
te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output);

/**
 * Scratch bytes te_depthwise_conv_inplace_s8 needs: one output plane (output.h * output.w), or
 * on a small plane whose ring of delayed outputs does not fit it (3x3, stride 1, pad 1, at least
 * 4 channels, 4 * (w + 2) > h * w, (h + 2) * (w + 2) <= 64, input zero point an int8) four
 * channels of the plane with a one-pixel border, 4 * (h + 2) * (w + 2). Every build asks the
 * same; the SIMD build uses the larger scratch for its small-plane path.
 */
int32_t te_depthwise_conv_inplace_get_buffer_size(const te_depthwise_conv_params_t *p);

/**
 * In-place depthwise convolution (TinyEngine's trick): the output may overwrite the input.
 * Each channel is computed whole into `scratch` from its own input channel, then written over
 * that channel's slots; no other channel's input is touched before it is read.
 * Domain: depth_multiplier 1 and output h, w, c equal to the input's (any kernel, stride 1 with
 * SAME padding in practice). Returns TE_ERR_ARG outside it, TE_ERR_SCRATCH without scratch.
 * @param input   int8 [n][h][w][c]; may be the same pointer as output
 * @param output  int8 [n][h][w][c]
 * @param scratch int8 [te_depthwise_conv_inplace_get_buffer_size(p)], from the caller
 */
te_status_t te_depthwise_conv_inplace_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch);

/** The kernel variants of DEPTHWISE_CONV_2D. */
typedef enum {
    TE_DEPTHWISE_GENERIC = 0,  /**< te_depthwise_conv_s8 */
    TE_DEPTHWISE_3X3 = 1,      /**< te_depthwise_conv_3x3_s8 */
    TE_DEPTHWISE_INPLACE = 2   /**< te_depthwise_conv_inplace_s8 */
} te_depthwise_variant_t;

/**
 * The variant te_depthwise_conv_wrapper_s8 runs, by the rule DEPTHWISE_CONV_2D's `kernel` hook
 * applies in tinyengine/ops/depthwise.py (tests hold the two equal): in place when the output
 * buffer is the input's (`in_place`, decided by the memory planner inside the in-place kernel's
 * domain), else the 3x3 kernel inside its domain, else the generic kernel.
 */
te_depthwise_variant_t te_depthwise_conv_variant(const te_depthwise_conv_params_t *p,
                                                 int32_t in_place);

/** Scratch bytes te_depthwise_conv_wrapper_s8 needs: the in-place kernel's, else 0. The twin of
 * DEPTHWISE_CONV_2D's `scratch_bytes` hook. */
int32_t te_depthwise_conv_get_buffer_size_s8(const te_depthwise_conv_params_t *p,
                                             int32_t in_place);

/** Depthwise convolution through the variant te_depthwise_conv_variant chooses (in place when
 * output == input). @return as the chosen kernel. */
te_status_t te_depthwise_conv_wrapper_s8(const te_depthwise_conv_params_t *p,
                                         const int8_t *input, const int8_t *filter,
                                         const int32_t *bias, int8_t *output, int8_t *scratch);

/**
 * The paths of the int8 kernels: what te_depthwise_conv_s8, te_depthwise_conv_3x3_s8 and
 * te_depthwise_conv_inplace_s8 run, each also a public entry point of its own. The path depends
 * on the layer's shapes and constant parameters only, so the code generator picks it
 * (tinyengine/ops/depthwise.py, simd_path, by te_depthwise_path_s8's rule) and calls that entry
 * point: with -ffunction-sections and --gc-sections a model then links the paths its layers
 * take and no other. The SIMD paths exist where te_simd.h sets TE_SIMD; without it every entry
 * point is its variant's portable loop (the _portable_s8 ones), so the generated code is the
 * same for every core. Each SIMD path checks its geometry and requantisation domain, and
 * refuses a layer outside them with TE_ERR_ARG. Arguments as the variant's kernel.
 *
 * Out of place ("partial": some channels outside te_simd_requant's exact domain, which the
 * path recomputes by the portable rule afterwards; else every channel is inside it):
 */
typedef enum {
    TE_DW_PATH_PORTABLE = 0,          /**< te_depthwise_conv_portable_s8 */
    TE_DW_PATH_3X3_PORTABLE = 1,      /**< te_depthwise_conv_3x3_portable_s8 */
    TE_DW_PATH_3X3_W9 = 2,            /**< te_depthwise_conv_3x3_w9_s8 */
    TE_DW_PATH_3X3_W9_PARTIAL = 3,    /**< te_depthwise_conv_3x3_w9_partial_s8 */
    TE_DW_PATH_W9 = 4,                /**< te_depthwise_conv_w9_s8 */
    TE_DW_PATH_W9_PARTIAL = 5,        /**< te_depthwise_conv_w9_partial_s8 */
    TE_DW_PATH_PAIRS = 6,             /**< te_depthwise_conv_pairs_s8 */
    TE_DW_PATH_PAIRS_PARTIAL = 7,     /**< te_depthwise_conv_pairs_partial_s8 */
    TE_DW_PATH_QUADS = 8,             /**< te_depthwise_conv_quads_s8 */
    TE_DW_PATH_QUADS_PARTIAL = 9,     /**< te_depthwise_conv_quads_partial_s8 */
    TE_DW_PATH_INPLACE_PORTABLE = 10, /**< te_depthwise_conv_inplace_portable_s8 */
    TE_DW_PATH_INPLACE_RING = 11,     /**< te_depthwise_conv_inplace_ring_s8 */
    TE_DW_PATH_INPLACE_SMALL = 12,    /**< te_depthwise_conv_inplace_small_s8 */
    TE_DW_PATH_INPLACE_ROWS = 13,     /**< te_depthwise_conv_inplace_rows_s8 */
    TE_DW_PATH_INPLACE_RING3 = 14,    /**< te_depthwise_conv_inplace_ring3_s8 */
    TE_DW_PATH_INPLACE_PLANE = 15     /**< te_depthwise_conv_inplace_plane_s8 */
} te_depthwise_path_t;

/**
 * The path the variant's kernel takes for these params and bias in this build (TE_SIMD), by the
 * rule simd_path in tinyengine/ops/depthwise.py applies (tests/test_kernel_paths.py holds the two
 * equal): the requantisation domain first (every channel inside: the SIMD path; some: its
 * partial form; none: the portable loop; in place there is no partial form), then
 * - out of place: "pairs" for one input channel with a multiplier that is a multiple of 4 (not
 *   a 3x3 window), "w9" (3x3_w9 for the 3x3 variant) for a 3x3 window, dilation 1, multiplier 1,
 *   else "quads";
 * - in place: "small" on a small plane, "ring3" (three padded rows), "rows", "ring" (delayed
 *   outputs), else "plane" (a channel at a time).
 * p must pass the kernel's argument checks.
 */
te_depthwise_path_t te_depthwise_path_s8(const te_depthwise_conv_params_t *p,
                                         const int32_t *bias, te_depthwise_variant_t variant);

/** The generic loop, every build: any kernel, stride, dilation, padding and multiplier. */
te_status_t te_depthwise_conv_portable_s8(const te_depthwise_conv_params_t *p,
                                          const int8_t *input, const int8_t *filter,
                                          const int32_t *bias, int8_t *output);
/** The hoisted 3x3 loop, every build; domain as te_depthwise_conv_3x3_s8. */
te_status_t te_depthwise_conv_3x3_portable_s8(const te_depthwise_conv_params_t *p,
                                              const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, int8_t *output);
/** The in-place loop (a channel at a time through the plane), every build. */
te_status_t te_depthwise_conv_inplace_portable_s8(const te_depthwise_conv_params_t *p,
                                                  const int8_t *input, const int8_t *filter,
                                                  const int32_t *bias, int8_t *output,
                                                  int8_t *scratch);

/* The out-of-place SIMD paths: the 3x3 variant's (domain as te_depthwise_conv_3x3_s8), then
 * the generic one's: w9 (3x3 window, dilation 1, multiplier 1), pairs (one input channel, a
 * multiplier of 4, dilation 1 and stride 1 or 2 along x, not 3x3), quads (any layer). */
te_status_t te_depthwise_conv_3x3_w9_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        int8_t *output);
te_status_t te_depthwise_conv_3x3_w9_partial_s8(const te_depthwise_conv_params_t *p,
                                                const int8_t *input, const int8_t *filter,
                                                const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_w9_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_w9_partial_s8(const te_depthwise_conv_params_t *p,
                                            const int8_t *input, const int8_t *filter,
                                            const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_pairs_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias,
                                       int8_t *output);
te_status_t te_depthwise_conv_pairs_partial_s8(const te_depthwise_conv_params_t *p,
                                               const int8_t *input, const int8_t *filter,
                                               const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_quads_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias,
                                       int8_t *output);
te_status_t te_depthwise_conv_quads_partial_s8(const te_depthwise_conv_params_t *p,
                                               const int8_t *input, const int8_t *filter,
                                               const int32_t *bias, int8_t *output);

/* The in-place SIMD paths (domain and scratch as te_depthwise_conv_inplace_s8; "small" needs
 * the larger scratch te_depthwise_conv_inplace_get_buffer_size asks for a small plane). */
te_status_t te_depthwise_conv_inplace_small_s8(const te_depthwise_conv_params_t *p,
                                               const int8_t *input, const int8_t *filter,
                                               const int32_t *bias, int8_t *output,
                                               int8_t *scratch);
te_status_t te_depthwise_conv_inplace_ring3_s8(const te_depthwise_conv_params_t *p,
                                               const int8_t *input, const int8_t *filter,
                                               const int32_t *bias, int8_t *output,
                                               int8_t *scratch);
te_status_t te_depthwise_conv_inplace_rows_s8(const te_depthwise_conv_params_t *p,
                                              const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, int8_t *output,
                                              int8_t *scratch);
te_status_t te_depthwise_conv_inplace_ring_s8(const te_depthwise_conv_params_t *p,
                                              const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, int8_t *output,
                                              int8_t *scratch);
te_status_t te_depthwise_conv_inplace_plane_s8(const te_depthwise_conv_params_t *p,
                                               const int8_t *input, const int8_t *filter,
                                               const int32_t *bias, int8_t *output,
                                               int8_t *scratch);

/**
 * 16x8 depthwise convolution (TFLite's DepthwiseConvPerChannel for int16 input): the generic
 * geometry of te_depthwise_conv_s8, int64 sums, requantised by TFLite's int64
 * MultiplyByQuantizedMultiplier (te_requant16.h). No 3x3 or in-place variant.
 * Domain: q.input_offset == q.output_offset == 0 (symmetric int16), INT16_MIN <= q.act_min <=
 * q.act_max <= INT16_MAX, multipliers >= 0 and shifts in [-31, TE_S64_MAX_SHIFT].
 * @param input  int16 [input.n][input.h][input.w][input.c]
 * @param filter int8 [1][filter.h][filter.w][filter.c]
 * @param bias   int64 [filter.c], or NULL
 * @param output int16 [output.n][output.h][output.w][output.c]; must not alias the input
 * @return TE_OK, or TE_ERR_ARG for null pointers, mismatched dimensions or parameters outside
 *         the domain.
 */
te_status_t te_depthwise_conv_s16(const te_depthwise_conv_params_t *p, const int16_t *input,
                                  const int8_t *filter, const int64_t *bias, int16_t *output);

#endif /* TE_DEPTHWISE_H */
