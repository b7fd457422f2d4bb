/**
 * @file ecg_nn.h
 * @brief int8 neural-network kernels, bit-exact with the TensorFlow Lite Micro reference kernels.
 *
 * Every kernel reproduces the integer arithmetic of the TFLM *reference* kernel named in its
 * documentation (`tensorflow/lite/kernels/internal/reference/...` and `micro/kernels/...`, built
 * without `TFLITE_SINGLE_ROUNDING`, TFLM's default; matched against the `tflite-micro` PyPI build),
 * so a model gives the same int8 outputs here as under the TFLM interpreter, bit for bit. The
 * parameter structs hold what TFLM's `Prepare()` functions compute (`QuantizeMultiplier` on the
 * same double/float scale expressions); `tools/gen_model_c.py` derives them from a `.tflite` file
 * and emits a model as one function, `ecg_model_run()`, that calls these kernels on one arena.
 * Kernels never allocate and keep no state; each returns an ::ecg_err_t (ECG_ERR_NULL for a
 * missing buffer; a generated model never gets another error).
 *
 * @par Quantization
 * A tensor value `q` (int8) stands for the real number `scale * (q - zero_point)`. Every
 * parameter named `*_offset` is added to a raw value: an input offset is the *negative* of the
 * input zero point, an output offset is the output zero point (the CMSIS-NN convention). Weights
 * are symmetric (zero point 0) and may be quantized per output channel.
 *
 * @par Requantization (::ecg_requant)
 * A real multiplier `M` is stored as a Q31 `multiplier` in [2^30, 2^31) and a power-of-two
 * `shift` (`M = multiplier * 2^(shift - 31)`). An int32 accumulator is rescaled with two roundings,
 * TFLM's `MultiplyByQuantizedMultiplier` (gemmlowp):
 *   1. `x << max(shift, 0)`,
 *   2. `SaturatingRoundingDoublingHighMul(x, multiplier)` = round(x * multiplier / 2^31), ties
 *      toward +infinity (the int64 product plus 2^30, arithmetic shift right by 31),
 *   3. `RoundingDivideByPOT(., max(-shift, 0))` = round(. / 2^-shift), ties away from zero.
 * Double rounding is deliberate: it is what TFLM computes (a single-rounding `(x*m + r) >> n`
 * differs from it by one on some ties). Inside the kernels the same two roundings are computed
 * with fewer instructions where the operands are known to be small (|x| < 2^30): step 2 as one
 * SMMULR on `2x` with the DSP extension, step 3 as `(t + 2^(e-1) - (t < 0)) >> e`.
 *
 * @par Layout
 * Row-major (C order) tensors, TFLite's layouts: fully connected weights `[out][in]`, activations
 * `[..., channels]`, convolutions NHWC with filters `[out_c][kh][kw][in_c]` (depthwise
 * `[1][kh][kw][out_c]`).
 *
 * @par Build options
 * - `ECG_HAVE_DSP` (default: 1 when the compiler targets the Armv7E-M DSP extension,
 *   `__ARM_FEATURE_DSP`, e.g. Cortex-M4/M7/M33): SXTB16/SMLAD dot products (the input vector
 *   sign-extended once and shared by four output rows, as CMSIS-NN does), SMMULR high multiplies,
 *   SSAT clamps. Same integers as the plain C code, which is always built; define it to 0 to
 *   force the plain path.
 * - `ECG_NN_DSP_EMULATE` (tests only): the DSP path with C models of those instructions, so a host
 *   build can check it bit for bit (tests/test_classifier_c.py).
 */
#ifndef ECG_NN_H
#define ECG_NN_H

#include "ecg/ecg_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most dimensions a broadcast, transpose or reduction is described with (after merging). */
#define ECG_NN_MAX_DIMS 6u

/** Alignment the graph arena and kernel scratch buffers need, bytes (int32 temporaries). */
#define ECG_NN_ARENA_ALIGN 4u

/** Entries of a softmax exponential table: one per input difference 0, -1, ..., -255. */
#define ECG_NN_SOFTMAX_LUT_LEN 256u

/** A real multiplier as TFLM's `QuantizeMultiplier` stores it (see ::ecg_requant). */
typedef struct {
    int32_t multiplier; /**< Q31 significand in [2^30, 2^31), or 0 for a zero multiplier */
    int32_t shift;      /**< power-of-two exponent, -31..30: > 0 shifts left, < 0 right */
} ecg_nn_quant_t;

/**
 * @brief Rescale an int32 accumulator by a quantized multiplier: TFLM's
 *        `MultiplyByQuantizedMultiplier(int32_t x, int32_t multiplier, int shift)`.
 *
 * Two roundings (see the file documentation): a rounding doubling high multiply (ties toward
 * +infinity), then a rounding right shift by `-shift` (ties away from zero).
 * @param[in] x           accumulator; `x * 2^max(shift, 0)` must fit in int32
 * @param[in] multiplier  Q31 significand, >= 0
 * @param[in] shift       exponent, -31..30
 * @return round(x * multiplier * 2^(shift - 31)), as TFLM rounds it
 */
int32_t ecg_requant(int32_t x, int32_t multiplier, int32_t shift);

/**
 * @brief TFLM's `QuantizeMultiplier`: split a real multiplier into ::ecg_nn_quant_t.
 *
 * For code that builds kernel parameters on the device (e.g. a personalized classifier head).
 * `frexp`, round half away from zero of the Q31 significand, multipliers below 2^-31 flush to 0.
 * @param[in]  real_multiplier  >= 0
 * @param[out] q                multiplier and shift
 * @return ECG_OK, ECG_ERR_NULL, or ECG_ERR_RANGE for a negative, non-finite or too large (>= 2^31)
 *         multiplier
 */
ecg_err_t ecg_nn_quantize_multiplier(double real_multiplier, ecg_nn_quant_t *q);

/* ------------------------------------------------------------------------------------------ */
/* Fully connected                                                                              */

/**
 * Fully connected layer parameters (TFLM `FULLY_CONNECTED`, reference kernels
 * `reference_integer_ops::FullyConnected` / `FullyConnectedPerChannel`):
 *
 *     acc[b][o] = bias[o] + sum_i (weights[o][i] + weights_offset) * (input[b][i] + input_offset)
 *     output[b][o] = clamp(ecg_requant(acc, quant[o or 0]) + output_offset, act_min, act_max)
 *
 * int32 accumulation; `in_len` up to 2^16 keeps it exact.
 */
typedef struct {
    uint16_t batches;       /**< input rows (product of all but the last input dimension) */
    uint16_t in_len;        /**< accumulation depth (last input dimension) */
    uint16_t out_len;       /**< output channels */
    uint16_t per_channel;   /**< 1: `quant[out_len]`; 0: `quant[0]` for every channel */
    int32_t input_offset;   /**< -input zero point, -127..128 (0 when folded into the bias) */
    int32_t weights_offset; /**< -weights zero point (0 for TFLM int8 weights) */
    int32_t output_offset;  /**< output zero point, -128..127 */
    int32_t act_min;        /**< output clamp: -128 or the fused activation's bound */
    int32_t act_max;        /**< output clamp: 127 or the fused activation's bound */
    const int8_t *weights;  /**< `[out_len][in_len]` */
    const int32_t *bias;    /**< `[out_len]`, scale input_scale * weights_scale; NULL for none */
    const ecg_nn_quant_t *quant; /**< input_scale * weights_scale[o] / output_scale */
} ecg_nn_fc_params_t;

/**
 * @brief int8 fully connected layer.
 * @param[in]  p       parameters
 * @param[in]  input   `[batches][in_len]`
 * @param[out] output  `[batches][out_len]`; must not overlap `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_fully_connected_s8(const ecg_nn_fc_params_t *p, const int8_t *input,
                                    int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Batched matrix product                                                                       */

/**
 * Batched matrix product parameters (TFLM `BATCH_MATMUL`, `reference_ops::BatchMatMul` int8):
 *
 *     acc = sum_k (lhs[b][r][k] + lhs_offset) * (rhs[b][k][c] + rhs_offset)
 *     out[b][r][c] = clamp(ecg_requant(acc, quant) + output_offset, -128, 127)
 *
 * The operands are addressed through strides, which covers TFLite's `adj_x` / `adj_y`,
 * broadcast batch dimensions (stride 0) and a TRANSPOSE folded into the operand by the generator.
 * The output is dense `[batch...][rows][cols]`. An operand that is not contiguous along the depth
 * is first gathered into the scratch (::ecg_nn_batch_matmul_s8_scratch_bytes), as TFLM transposes
 * its right operand; the sums are the same integers.
 */
typedef struct {
    uint16_t batch[3];        /**< batch extents, outermost first (1 when unused) */
    uint16_t lhs_batch_stride[3]; /**< lhs element stride of each batch dimension (0: broadcast) */
    uint16_t rhs_batch_stride[3]; /**< rhs element stride of each batch dimension (0: broadcast) */
    uint16_t rows;            /**< output rows */
    uint16_t cols;            /**< output columns */
    uint16_t depth;           /**< accumulation depth */
    uint16_t lhs_row_stride;  /**< lhs stride between rows */
    uint16_t lhs_k_stride;    /**< lhs stride along the depth */
    uint16_t rhs_k_stride;    /**< rhs stride along the depth */
    uint16_t rhs_col_stride;  /**< rhs stride between columns */
    int32_t lhs_offset;       /**< -lhs zero point */
    int32_t rhs_offset;       /**< -rhs zero point */
    int32_t output_offset;    /**< output zero point */
    ecg_nn_quant_t quant;     /**< float(lhs_scale * rhs_scale) / output_scale */
} ecg_nn_bmm_params_t;

/**
 * @brief Scratch ::ecg_nn_batch_matmul_s8 needs, bytes: column sums (int32, when the lhs zero
 *        point is not 0) and the operands gathered depth-contiguous (when they are not).
 */
size_t ecg_nn_batch_matmul_s8_scratch_bytes(const ecg_nn_bmm_params_t *p);

/**
 * @brief int8 batched matrix product.
 * @param[in]  p        parameters
 * @param[in]  lhs      left operand
 * @param[in]  rhs      right operand
 * @param[out] out      `[batch0][batch1][batch2][rows][cols]`; must not overlap the operands
 * @param[out] scratch  ::ecg_nn_batch_matmul_s8_scratch_bytes bytes, ECG_NN_ARENA_ALIGN-aligned
 *                      (NULL when that is 0)
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_batch_matmul_s8(const ecg_nn_bmm_params_t *p, const int8_t *lhs,
                                 const int8_t *rhs, int8_t *out, int8_t *scratch);

/* ------------------------------------------------------------------------------------------ */
/* Element-wise ADD and MUL with broadcasting                                                  */

/**
 * Iteration space of a broadcast element-wise op: the output is dense over `dims` (outermost
 * first), each input is read with its own element strides (0 along a broadcast dimension). The
 * generator merges dimensions, so a plain element-wise op is `{1, ..., 1, n}` with strides 1.
 */
typedef struct {
    uint16_t dims[4];     /**< output extents, outermost first */
    uint16_t stride1[4];  /**< input 1 element strides */
    uint16_t stride2[4];  /**< input 2 element strides */
} ecg_nn_bcast_t;

/**
 * ADD parameters (TFLM `ADD` int8, `reference_integer_ops::AddFunc`):
 *
 *     a = ecg_requant((in1 + input1_offset) << left_shift, input1_quant)   (shift <= 0)
 *     b = ecg_requant((in2 + input2_offset) << left_shift, input2_quant)
 *     out = clamp(ecg_requant(a + b, output_quant) + output_offset, act_min, act_max)
 *
 * with left_shift = 20 and the multipliers in1_scale / (2 max_scale), in2_scale / (2 max_scale),
 * 2 max_scale / (2^20 out_scale).
 *
 * When input 2 is a constant, the generator may precompute its rescaled values `b` into
 * `input2_scaled` (int32, one per input-2 element, same addressing); the kernel then skips that
 * half. Same results.
 */
typedef struct {
    ecg_nn_bcast_t shape;
    int32_t input1_offset;       /**< -input 1 zero point */
    int32_t input2_offset;       /**< -input 2 zero point */
    int32_t output_offset;       /**< output zero point */
    int32_t left_shift;          /**< 20 for int8 */
    ecg_nn_quant_t input1_quant; /**< shift <= 0 */
    ecg_nn_quant_t input2_quant; /**< shift <= 0 */
    ecg_nn_quant_t output_quant; /**< shift <= 0 */
    int32_t act_min;             /**< output clamp */
    int32_t act_max;             /**< output clamp */
    const int32_t *input2_scaled; /**< optional precomputed `b` of a constant input 2, or NULL */
} ecg_nn_add_params_t;

/**
 * @brief int8 ADD with broadcasting.
 * @param[in]  p    parameters
 * @param[in]  in1  input 1
 * @param[in]  in2  input 2 (ignored when `p->input2_scaled` is set)
 * @param[out] out  output, dense over `p->shape.dims`; may alias an input that is not broadcast
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_add_s8(const ecg_nn_add_params_t *p, const int8_t *in1, const int8_t *in2,
                        int8_t *out);

/**
 * MUL parameters (TFLM `MUL` int8, `reference_integer_ops::MulElementwise` /
 * `BroadcastMul4DSlow`):
 *
 *     out = clamp(ecg_requant((in1 + input1_offset) * (in2 + input2_offset), quant)
 *                 + output_offset, act_min, act_max)
 *
 * with the multiplier in1_scale * in2_scale / out_scale (doubles).
 */
typedef struct {
    ecg_nn_bcast_t shape;
    int32_t input1_offset;  /**< -input 1 zero point */
    int32_t input2_offset;  /**< -input 2 zero point */
    int32_t output_offset;  /**< output zero point */
    ecg_nn_quant_t quant;   /**< in1_scale * in2_scale / out_scale */
    int32_t act_min;        /**< output clamp */
    int32_t act_max;        /**< output clamp */
} ecg_nn_mul_params_t;

/**
 * @brief int8 MUL with broadcasting.
 * @param[in]  p    parameters
 * @param[in]  in1  input 1
 * @param[in]  in2  input 2
 * @param[out] out  output, dense over `p->shape.dims`; may alias an input that is not broadcast
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_mul_s8(const ecg_nn_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                        int8_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Softmax                                                                                      */

/**
 * Softmax parameters (TFLM `SOFTMAX` int8 -> int8, `reference_ops::Softmax<int8_t, int8_t>`:
 * gemmlowp fixed point, *not* the int16 LUT path). Per row, with d = in - max(row):
 *
 *     e(d) = exp_on_negative_values(Q5.26(srdhm(d << input_left_shift, input_multiplier)))
 *            for d >= diff_min, else 0                                         (Q0.31)
 *     s = sum_row RoundingDivideByPOT(e, 12)                                   (Q12.19)
 *     out = clamp(RoundingDivideByPOT(srdhm(1/s as Q0.31 and its exponent, e), .) - 128)
 *
 * e(d) only depends on the int8 difference, so it is tabulated once (::ecg_nn_softmax_exp_lut,
 * `exp_lut[-d]`); the generator writes the table, computed by the same fixed-point steps. The
 * output quantization is fixed by TFLite: scale 1/256, zero point -128.
 */
typedef struct {
    uint16_t rows;              /**< rows (product of all but the last dimension) */
    uint16_t depth;             /**< row length (last dimension) */
    int32_t input_multiplier;   /**< PreprocessSoftmaxScaling(beta, input_scale, 5) */
    int32_t input_left_shift;   /**< ... its left shift, >= 0 */
    int32_t diff_min;           /**< -CalculateInputRadius(5, input_left_shift) */
    const int32_t *exp_lut;     /**< `[ECG_NN_SOFTMAX_LUT_LEN]`: e(-i), i = 0..255 */
} ecg_nn_softmax_params_t;

/**
 * @brief Fill a softmax exponential table: `lut[i]` = e(-i) of ::ecg_nn_softmax_params_t.
 *
 * gemmlowp's `exp_on_negative_values` on a Q5.26 argument, computed in integers only.
 * @param[in]  input_multiplier  as in ::ecg_nn_softmax_params_t
 * @param[in]  input_left_shift  as in ::ecg_nn_softmax_params_t, 0..31
 * @param[in]  diff_min          as in ::ecg_nn_softmax_params_t
 * @param[out] lut               `[ECG_NN_SOFTMAX_LUT_LEN]`
 * @return ECG_OK, ECG_ERR_NULL or ECG_ERR_RANGE
 */
ecg_err_t ecg_nn_softmax_exp_lut(int32_t input_multiplier, int32_t input_left_shift,
                                 int32_t diff_min, int32_t *lut);

/**
 * @brief int8 softmax over the last dimension.
 * @param[in]  p       parameters
 * @param[in]  input   `[rows][depth]`
 * @param[out] output  `[rows][depth]`, scale 1/256, zero point -128; may alias `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_softmax_s8(const ecg_nn_softmax_params_t *p, const int8_t *input,
                            int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Mean                                                                                         */

/**
 * MEAN parameters over one run of adjacent dimensions: the input is viewed as
 * `[outer][reduce][inner]` and the output is `[outer][inner]`. Two TFLM variants
 * (`micro/kernels/reduce_common.cc`, `EvalIntegerMean`):
 *  - `requantize` = 1 (input and output quantization differ),
 *    `reference_ops::QuantizedMeanOrSum`:
 *        out = clamp(ecg_requant(sum - in_zp * reduce, quant) + output_offset, -128, 127)
 *    where `quant` already folds 1/reduce in (the generator applies TFLM's integer adjustment:
 *    `multiplier << s / reduce`, `shift - s`, s = min(floor(log2 reduce), 32, 31 + shift)).
 *  - `requantize` = 0 (same scale and zero point), `reference_ops::Mean`:
 *        out = sum / reduce   (C integer division, truncating toward zero)
 */
typedef struct {
    uint16_t outer;          /**< product of the dimensions before the reduced ones */
    uint16_t reduce;         /**< number of elements averaged */
    uint16_t inner;          /**< product of the dimensions after the reduced ones */
    uint16_t requantize;     /**< 1: QuantizedMeanOrSum, 0: plain integer mean */
    int32_t input_zero_point; /**< input zero point (requantize = 1) */
    int32_t output_offset;   /**< output zero point (requantize = 1) */
    ecg_nn_quant_t quant;    /**< in_scale / out_scale / reduce, see above (requantize = 1) */
} ecg_nn_mean_params_t;

/**
 * @brief int8 mean over adjacent dimensions.
 * @param[in]  p       parameters
 * @param[in]  input   `[outer][reduce][inner]`
 * @param[out] output  `[outer][inner]`; must not overlap `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_mean_s8(const ecg_nn_mean_params_t *p, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Transpose                                                                                    */

/**
 * TRANSPOSE parameters: the output is dense over `dims` (outermost first, unused leading
 * dimensions 1); element `[i0]...[i5]` of the output is input element `sum_d i_d * stride[d]`.
 */
typedef struct {
    uint16_t dims[ECG_NN_MAX_DIMS];    /**< output extents */
    uint16_t stride[ECG_NN_MAX_DIMS];  /**< input element stride along each output dimension */
} ecg_nn_transpose_params_t;

/**
 * @brief Permute the dimensions of an int8 tensor (TFLM `TRANSPOSE`).
 * @param[in]  p       parameters
 * @param[in]  input   input tensor
 * @param[out] output  output tensor; must not overlap `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_transpose_s8(const ecg_nn_transpose_params_t *p, const int8_t *input,
                              int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Convolutions and pooling (NHWC)                                                              */

/**
 * CONV_2D / DEPTHWISE_CONV_2D parameters (`reference_integer_ops::ConvPerChannel` /
 * `DepthwiseConvPerChannel`). Out-of-image taps are skipped (zero padding in real terms):
 *
 *     acc = bias[oc] + sum_{ky,kx,ic in image} filter[.] * (in[y][x][ic] + input_offset)
 *     out = clamp(ecg_requant(acc, quant[oc]) + output_offset, act_min, act_max)
 *
 * Regular convolution: filter `[out_c][kh][kw][in_c / groups]`. Depthwise
 * (`depth_multiplier` > 0): filter `[1][kh][kw][out_c]`, output channel `ic * depth_multiplier + m`
 * reads input channel `ic`.
 */
typedef struct {
    uint16_t batches;          /**< N */
    uint16_t in_h, in_w, in_c; /**< input H, W, C */
    uint16_t out_h, out_w, out_c; /**< output H, W, C */
    uint16_t k_h, k_w;         /**< filter height and width */
    uint16_t stride_h, stride_w;
    uint16_t dilation_h, dilation_w;
    uint16_t pad_h, pad_w;     /**< top / left padding (TFLM ComputePaddingHeightWidth) */
    uint16_t filter_in_c;      /**< regular conv: input channels per group */
    uint16_t depth_multiplier; /**< 0: regular convolution; > 0: depthwise */
    int32_t input_offset;      /**< -input zero point */
    int32_t output_offset;     /**< output zero point */
    int32_t act_min, act_max;  /**< output clamp */
    const int8_t *filter;      /**< see above */
    const int32_t *bias;       /**< `[out_c]` or NULL */
    const ecg_nn_quant_t *quant; /**< `[out_c]`: input_scale * filter_scale[oc] / output_scale */
} ecg_nn_conv_params_t;

/**
 * @brief int8 2-D convolution, regular or depthwise.
 * @param[in]  p       parameters
 * @param[in]  input   `[N][in_h][in_w][in_c]`
 * @param[out] output  `[N][out_h][out_w][out_c]`; must not overlap `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_conv_s8(const ecg_nn_conv_params_t *p, const int8_t *input, int8_t *output);

/**
 * AVERAGE_POOL_2D parameters (`reference_integer_ops::AveragePool`; input and output share
 * scale and zero point): the mean of the raw values of the in-image taps, rounded half away from
 * zero by integer division, then clamped.
 */
typedef struct {
    uint16_t batches;
    uint16_t in_h, in_w, channels;
    uint16_t out_h, out_w;
    uint16_t k_h, k_w;
    uint16_t stride_h, stride_w;
    uint16_t pad_h, pad_w;
    int32_t act_min, act_max;
} ecg_nn_avgpool_params_t;

/**
 * @brief int8 average pooling.
 * @param[in]  p       parameters
 * @param[in]  input   `[N][in_h][in_w][channels]`
 * @param[out] output  `[N][out_h][out_w][channels]`; must not overlap `input`
 * @return ECG_OK, ECG_ERR_NULL, or ECG_ERR_CONFIG when a window holds no input tap
 */
ecg_err_t ecg_nn_avgpool_s8(const ecg_nn_avgpool_params_t *p, const int8_t *input,
                            int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Requantization (RELU, RELU6, RELU_N1_TO_1, QUANTIZE int8 -> int8)                           */

/**
 * Element-wise rescale (TFLM `ReluQuantized`, `reference_ops::Requantize`):
 *
 *     out = clamp(ecg_requant(in - input_zero_point, quant) + output_offset, act_min, act_max)
 */
typedef struct {
    uint32_t count;           /**< elements */
    int32_t input_zero_point; /**< input zero point */
    int32_t output_offset;    /**< output zero point */
    ecg_nn_quant_t quant;     /**< input_scale / output_scale */
    int32_t act_min, act_max; /**< -128/127 (QUANTIZE) or the activation's bounds */
} ecg_nn_requantize_params_t;

/**
 * @brief int8 element-wise requantization with a clamp.
 * @param[in]  p       parameters
 * @param[in]  input   `[count]`
 * @param[out] output  `[count]`; may alias `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_requantize_s8(const ecg_nn_requantize_params_t *p, const int8_t *input,
                               int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Table lookup                                                                                 */

/**
 * An element-wise function of one int8 tensor, tabulated: `out = table[(uint8_t)in]`. The
 * generator uses it for any int8 element-wise op whose other operands are scalar constants
 * (RELU, QUANTIZE, MUL or ADD by a scalar): it evaluates the TFLM kernel's integer arithmetic
 * for all 256 inputs at generation time, so the table holds exactly TFLM's outputs.
 */
typedef struct {
    uint32_t count;        /**< elements */
    const int8_t *table;   /**< `[256]`, indexed by the input's two's-complement byte */
} ecg_nn_lut_params_t;

/**
 * @brief `out[i] = table[(uint8_t)in[i]]`.
 * @param[in]  p       parameters
 * @param[in]  input   `[count]`
 * @param[out] output  `[count]`; may alias `input`
 * @return ECG_OK or ECG_ERR_NULL
 */
ecg_err_t ecg_nn_lut_s8(const ecg_nn_lut_params_t *p, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------------------------------ */
/* Compiled graphs                                                                              */

/**
 * Kernel of a node of a compiled graph (see ::ecg_nn_op_info_t). A model compiled by
 * `tools/gen_model_c.py` is a generated function, `ecg_model_run()`, that calls the kernels in
 * order on one caller-owned arena; its node list is also published as data for inspection.
 */
typedef enum {
    ECG_NN_OP_FULLY_CONNECTED = 1, /**< ::ecg_nn_fully_connected_s8 */
    ECG_NN_OP_BATCH_MATMUL = 2,    /**< ::ecg_nn_batch_matmul_s8 */
    ECG_NN_OP_ADD = 3,             /**< ::ecg_nn_add_s8 */
    ECG_NN_OP_MUL = 4,             /**< ::ecg_nn_mul_s8 */
    ECG_NN_OP_SOFTMAX = 5,         /**< ::ecg_nn_softmax_s8 */
    ECG_NN_OP_MEAN = 6,            /**< ::ecg_nn_mean_s8 */
    ECG_NN_OP_TRANSPOSE = 7,       /**< ::ecg_nn_transpose_s8 */
    ECG_NN_OP_CONV = 8,            /**< ::ecg_nn_conv_s8 (CONV_2D, DEPTHWISE_CONV_2D) */
    ECG_NN_OP_AVGPOOL = 9,         /**< ::ecg_nn_avgpool_s8 */
    ECG_NN_OP_REQUANTIZE = 10,     /**< ::ecg_nn_requantize_s8 */
    ECG_NN_OP_LUT = 12             /**< ::ecg_nn_lut_s8 */
} ecg_nn_op_kind_t;

/** Arena offset meaning "a constant operand, not in the arena". */
#define ECG_NN_CONST_OPERAND 0xFFFFFFFFu

/** One node of a compiled graph, as data (pointer-free: it lives in flash as is). */
typedef struct {
    uint8_t kind;          /**< an ::ecg_nn_op_kind_t */
    uint8_t n_in;          /**< operands: 1 or 2 */
    uint16_t tflite_index; /**< index of the operator in the .tflite subgraph */
    uint32_t in[2];        /**< arena byte offsets of the operands (ECG_NN_CONST_OPERAND: constant) */
    uint32_t out;          /**< arena byte offset of the output */
    uint32_t out_bytes;    /**< output size */
    uint32_t scratch;      /**< arena byte offset of the kernel's scratch (BATCH_MATMUL), else 0 */
} ecg_nn_op_info_t;

/** A graph input or output: where it lives in the arena and how it is quantized. */
typedef struct {
    uint32_t offset;     /**< arena byte offset */
    uint32_t len;        /**< elements (int8) */
    float scale;         /**< real value = scale * (q - zero_point) */
    int32_t zero_point;
} ecg_nn_io_t;

#ifdef __cplusplus
}
#endif

#endif /* ECG_NN_H */
