/**
 * @file te_pack.h
 * @brief TFLite PACK and UNPACK of int8 and int16 tensors: pure copies.
 *
 * PACK stacks n equally shaped tensors along a new axis; UNPACK splits a tensor along an axis
 * into its n slices, dropping that axis. With `outer` the product of the dims before the axis
 * and `copy_size` the product of the dims after it, the packed tensor is `outer` rows of n
 * blocks of `copy_size` elements, block i of a row belonging to tensor i. Input and outputs
 * share one quantisation (TFLite's converter gives them one), so nothing is requantised.
 *
 * The number of tensors varies from op to op, so the entry points are variadic: the generated
 * code passes every tensor pointer explicitly, each cast to exactly the documented type.
 */
#ifndef TE_PACK_H
#define TE_PACK_H

#include "te_common.h"

typedef struct {
    int32_t count;     /**< number of packed tensors (PACK's inputs, UNPACK's outputs), >= 1 */
    int32_t outer;     /**< product of the packed tensor's dims before the axis, >= 1 */
    int32_t copy_size; /**< product of the packed tensor's dims after the axis, >= 1 */
} te_pack_params_t;

/**
 * PACK: stack p->count int8 tensors.
 * @param input0 the first input (outer x copy_size elements)
 * @param ...    the other p->count - 1 inputs, each a `const int8_t *` of the same size, then
 *               the output, an `int8_t *` (outer x count x copy_size elements)
 * @return TE_OK, or TE_ERR_ARG for a null pointer or a parameter outside its range (then
 *         nothing is written).
 */
te_status_t te_pack_s8(const te_pack_params_t *p, const int8_t *input0, ...);

/**
 * UNPACK: split an int8 tensor into p->count slices.
 * @param input the packed tensor (outer x count x copy_size elements)
 * @param ...   p->count outputs, each an `int8_t *` (outer x copy_size elements)
 * @return TE_OK, or TE_ERR_ARG for a null pointer or a parameter outside its range (then
 *         nothing is written).
 */
te_status_t te_unpack_s8(const te_pack_params_t *p, const int8_t *input, ...);

/**
 * PACK of int16 tensors (TFLite's 16x8 mode): as te_pack_s8, the inputs passed as
 * `const int16_t *` and the output as an `int16_t *`; sizes count elements.
 */
te_status_t te_pack_s16(const te_pack_params_t *p, const int16_t *input0, ...);

/**
 * UNPACK of an int16 tensor: as te_unpack_s8, the outputs passed as `int16_t *`.
 */
te_status_t te_unpack_s16(const te_pack_params_t *p, const int16_t *input, ...);

#endif /* TE_PACK_H */
