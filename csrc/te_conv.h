/**
 * @file te_conv.h
 * @brief 2-D convolution (TFLite CONV_2D), NHWC activations, OHWI filters: int8, and 16x8
 *        (int16 activations, int8 weights) through the _s16 entry points.
 */
#ifndef TE_CONV_H
#define TE_CONV_H

#include "te_common.h"

typedef struct {
    te_dims_t input;    /**< n, h, w, c of the input */
    te_dims_t filter;   /**< n = output channels, h, w, c = input channels */
    te_dims_t output;   /**< n, h, w, c of the output */
    int32_t stride_h;   /**< >= 1 */
    int32_t stride_w;   /**< >= 1 */
    int32_t dilation_h; /**< >= 1 */
    int32_t dilation_w; /**< >= 1 */
    int32_t pad_h;      /**< top padding (TFLite puts the odd pixel at the bottom) */
    int32_t pad_w;      /**< left padding */
    te_quant_t q;
    te_requant_t rq;
    int32_t groups;     /**< >= 1; input.c == filter.c * groups, output.c a multiple of groups */
} te_conv2d_params_t;

/**
 * Generic convolution: any kernel size, stride, dilation, padding and group count. With G groups
 * the filter is OHW(C/G): output channel oc belongs to group g = oc / (O/G) and reads input
 * channels g*C/G .. (g+1)*C/G - 1. Runs the path te_conv2d_path_s8 picks (see
 * te_conv2d_path_t). The SIMD build takes an im2col path where the kernel row
 * (filter.w * filter.c) is short and there is one group; it uses the end of `output` as work
 * space before writing it (no scratch argument: the arena does not grow). As for every
 * out-of-place kernel, output must not overlap input.
 * @param bias int32 per output channel, or NULL.
 * @return TE_OK, or TE_ERR_ARG for null pointers or mismatched dimensions.
 */
te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output);

/**
 * te_conv2d_s8 with `room` (>= 0) bytes after the output's end that the caller leaves free for
 * the kernel to use (te_conv2d_rows_inplace_s8: the gap between a band's output and the input
 * rows still to read). The im2col path puts its work space at the end of output + room, so
 * with room >= te_conv2d_room_bytes(p) every pixel takes it. As te_conv2d_s8 otherwise. The
 * path follows te_conv2d_path_s8's rule with the im2col domain judged on the room given, so a
 * band-by-band caller may see it change from band to band: that caller keeps this dispatcher.
 */
te_status_t te_conv2d_room_s8(const te_conv2d_params_t *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias, int8_t *output,
                              int32_t room);

/** Bytes of work space te_conv2d_s8's im2col path uses on this layer (0 where it does not run:
 * a portable build, or outside its domain). */
int32_t te_conv2d_room_bytes(const te_conv2d_params_t *p);

/**
 * Pointwise convolution. Domain: 1x1 filter, stride 1, no padding (dilation is then irrelevant),
 * one group. Runs the path te_conv2d_path_s8 picks.
 * Returns TE_ERR_ARG outside that domain rather than computing a wrong answer.
 */
te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *bias, int8_t *output);

/** Scratch bytes te_conv2d_1x1_inplace_s8 needs: the larger of one output pixel (output.c) and
 * two input pixels widened to int16 (4 * input.c). */
int32_t te_conv2d_1x1_inplace_get_buffer_size(const te_conv2d_params_t *p);

/**
 * Pointwise convolution whose output may overwrite its input. Output pixel i depends on input
 * pixel i only; each is computed into `scratch` and then stored (the SIMD path instead copies
 * two input pixels into `scratch`, widened, and stores their outputs directly). When the
 * output has no more channels than the input, pixels go in order: pixel i's output lands on
 * bytes of pixels <= i, all consumed. Otherwise they go in reverse: pixel i's output starts at
 * or after pixel i's input, over pixels already consumed. The output buffer must start where
 * the input starts. Domain: as te_conv2d_1x1_s8. Returns TE_ERR_SCRATCH without scratch.
 */
te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int8_t *scratch);

/** The kernel variants of CONV_2D. */
typedef enum {
    TE_CONV2D_GENERIC = 0,     /**< te_conv2d_s8 */
    TE_CONV2D_1X1 = 1,         /**< te_conv2d_1x1_s8 */
    TE_CONV2D_1X1_INPLACE = 2  /**< te_conv2d_1x1_inplace_s8 */
} te_conv2d_variant_t;

/**
 * The variant te_conv2d_wrapper_s8 runs, by the rule CONV_2D's `kernel` hook applies in
 * tinyengine/ops/conv.py (tests hold the two equal): in place when the output buffer is the
 * input's (`in_place`, which the memory planner decides), else the 1x1 kernel inside its domain,
 * else the generic kernel.
 */
te_conv2d_variant_t te_conv2d_variant(const te_conv2d_params_t *p, int32_t in_place);

/** Scratch bytes te_conv2d_wrapper_s8 needs for this layer: the in-place kernel's, else 0. The
 * twin of CONV_2D's `scratch_bytes` hook. */
int32_t te_conv2d_get_buffer_size_s8(const te_conv2d_params_t *p, int32_t in_place);

/**
 * Convolution through the variant te_conv2d_variant chooses (in place when output == input).
 * @param scratch int8 [te_conv2d_get_buffer_size_s8(p, output == input)], or NULL when that is 0
 * @return as the chosen kernel.
 */
te_status_t te_conv2d_wrapper_s8(const te_conv2d_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output,
                                 int8_t *scratch);

/**
 * The paths of the int8 kernels: what te_conv2d_s8, te_conv2d_1x1_s8 and
 * te_conv2d_1x1_inplace_s8 run, each also a public entry point of its own. The path depends on
 * the layer's shapes and constant parameters only, so the code generator picks it
 * (tinyengine/ops/conv.py, simd_path, by te_conv2d_path_s8's rule) and calls that entry point:
 * with -ffunction-sections and --gc-sections a model then links the paths its layers take and
 * no other. The SIMD paths exist where te_simd.h sets TE_SIMD; without it every entry point is
 * its variant's portable loop (the _portable_s8 ones), so the generated code is the same for
 * every core. Each SIMD path checks its geometry and requantisation domain, and refuses a layer
 * outside them with TE_ERR_ARG. Arguments as the variant's kernel. ("partial": some channels
 * outside te_simd_requant's exact domain, which the path recomputes by the portable rule
 * afterwards; else every channel is inside it.)
 */
typedef enum {
    TE_CONV_PATH_PORTABLE = 0,               /**< te_conv2d_portable_s8 */
    TE_CONV_PATH_DIRECT = 1,                 /**< te_conv2d_direct_s8 */
    TE_CONV_PATH_DIRECT_PARTIAL = 2,         /**< te_conv2d_direct_partial_s8 */
    TE_CONV_PATH_IM2COL = 3,                 /**< te_conv2d_im2col_s8 */
    TE_CONV_PATH_IM2COL_PARTIAL = 4,         /**< te_conv2d_im2col_partial_s8 */
    TE_CONV_PATH_IM2COL_Q15 = 5,             /**< te_conv2d_im2col_q15_s8 */
    TE_CONV_PATH_IM2COL_Q15_PARTIAL = 6,     /**< te_conv2d_im2col_q15_partial_s8 */
    TE_CONV_PATH_1X1_PORTABLE = 7,           /**< te_conv2d_1x1_portable_s8 */
    TE_CONV_PATH_1X1_PAIRS = 8,              /**< te_conv2d_1x1_pairs_s8 */
    TE_CONV_PATH_1X1_PAIRS_PARTIAL = 9,      /**< te_conv2d_1x1_pairs_partial_s8 */
    TE_CONV_PATH_1X1_WIDENED = 10,           /**< te_conv2d_1x1_widened_s8 */
    TE_CONV_PATH_1X1_WIDENED_PARTIAL = 11,   /**< te_conv2d_1x1_widened_partial_s8 */
    TE_CONV_PATH_1X1_INPLACE_PORTABLE = 12,  /**< te_conv2d_1x1_inplace_portable_s8 */
    TE_CONV_PATH_1X1_INPLACE_Q15 = 13        /**< te_conv2d_1x1_inplace_q15_s8 */
} te_conv2d_path_t;

/**
 * The path the variant's kernel takes for these params and bias in this build (TE_SIMD), out
 * of place with no room after the output (te_conv2d_room_s8 with a room decides im2col on the
 * room it has: te_conv2d_rows_inplace_s8's bands call it), by the rule simd_path in
 * tinyengine/ops/conv.py applies (tests/test_conv_paths.py holds the two equal): the
 * requantisation domain first (every channel inside: the SIMD path; some: its partial form;
 * none: the portable loop; in place there is no partial form), then
 * - generic: "im2col_q15" (input channels a multiple of 4) or "im2col" where the im2col work
 *   space and a pixel pair fit in the output (te_conv2d_room_bytes), else "direct";
 * - pointwise: "widened" from 16 input channels where the output holds a pixel pair besides
 *   the widened pair, else "pairs" (channel pairs);
 * - in place: "q15".
 * p must pass the kernel's argument checks.
 */
te_conv2d_path_t te_conv2d_path_s8(const te_conv2d_params_t *p, const int32_t *bias,
                                   te_conv2d_variant_t variant);

/** The generic loop, every build: any kernel, stride, dilation, padding and group count. */
te_status_t te_conv2d_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output);
/** The pointwise loop, every build; domain as te_conv2d_1x1_s8. */
te_status_t te_conv2d_1x1_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output);
/** The in-place pointwise loop (a pixel at a time through the scratch), every build. */
te_status_t te_conv2d_1x1_inplace_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                              const int8_t *filter, const int32_t *bias,
                                              int8_t *output, int8_t *scratch);

/* The generic kernel's SIMD paths: direct (any layer: channel pairs over each pixel's taps),
 * im2col (im2col columns of pixel pairs, widened; te_conv2d_room_bytes(p) > 0 and the output
 * holding a pixel pair besides that work space, input channels not a multiple of 4) and
 * im2col_q15 (the same, input channels a multiple of 4: widened straight from the input). */
te_status_t te_conv2d_direct_s8(const te_conv2d_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_direct_partial_s8(const te_conv2d_params_t *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        int8_t *output);
te_status_t te_conv2d_im2col_s8(const te_conv2d_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_im2col_partial_s8(const te_conv2d_params_t *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias,
                                        int8_t *output);
te_status_t te_conv2d_im2col_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_im2col_q15_partial_s8(const te_conv2d_params_t *p, const int8_t *input,
                                            const int8_t *filter, const int32_t *bias,
                                            int8_t *output);

/* The pointwise kernel's SIMD paths (domain as te_conv2d_1x1_s8): pairs (channel pairs over
 * pixel pairs) and widened (16 input channels or more, the output holding a pixel pair besides
 * the widened pair, 4 * input.c + 3 bytes: each pixel pair widened once, then the pairs). */
te_status_t te_conv2d_1x1_pairs_s8(const te_conv2d_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_pairs_partial_s8(const te_conv2d_params_t *p, const int8_t *input,
                                           const int8_t *filter, const int32_t *bias,
                                           int8_t *output);
te_status_t te_conv2d_1x1_widened_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_widened_partial_s8(const te_conv2d_params_t *p, const int8_t *input,
                                             const int8_t *filter, const int32_t *bias,
                                             int8_t *output);

/* The in-place pointwise kernel's SIMD path (domain and scratch as te_conv2d_1x1_inplace_s8):
 * pixel pairs widened into the scratch. */
te_status_t te_conv2d_1x1_inplace_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch);

/**
 * 16x8 convolution (TFLite's ConvPerChannel for int16 input, int64 bias): the generic geometry
 * of te_conv2d_s8 (any kernel, stride, dilation, padding, groups), int64 sums, requantised by
 * TFLite's int64 MultiplyByQuantizedMultiplier (te_requant16.h). No in-place or 1x1 variant.
 * Domain: q.input_offset == q.output_offset == 0 (symmetric int16), INT16_MIN <= q.act_min <=
 * q.act_max <= INT16_MAX, multipliers >= 0 and shifts in [-31, TE_S64_MAX_SHIFT].
 * @param input  int16 [input.n][input.h][input.w][input.c]
 * @param filter int8 [filter.n][filter.h][filter.w][filter.c]
 * @param bias   int64 per output channel, or NULL
 * @param output int16 [output.n][output.h][output.w][output.c]; must not alias the input
 * @return TE_OK, or TE_ERR_ARG for null pointers, mismatched dimensions or parameters outside
 *         the domain.
 */
te_status_t te_conv2d_s16(const te_conv2d_params_t *p, const int16_t *input,
                          const int8_t *filter, const int64_t *bias, int16_t *output);

/**
 * 16x8 convolution with TFLM's int32 accumulator (an int32 bias, or no bias with the options'
 * quantized_bias_type INT32): sums wrap modulo 2^32 and are requantised by the int32 rule.
 * Arguments and domain as te_conv2d_s16 (any shift the int32 rule takes), except
 * @param bias int32 per output channel, or NULL
 */
te_status_t te_conv2d_acc32_s16(const te_conv2d_params_t *p, const int16_t *input,
                                const int8_t *filter, const int32_t *bias, int16_t *output);

#endif /* TE_CONV_H */
