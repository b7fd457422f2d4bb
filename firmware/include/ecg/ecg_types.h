/**
 * @file ecg_types.h
 * @brief Types shared by every ecgedge core module: the error code and its message.
 *
 * Every core function that can fail returns ::ecg_err_t: 0 is success, errors are negative.
 * Per-sample and per-block processing functions never fail and return void or a count.
 */
#ifndef ECG_TYPES_H
#define ECG_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. The host SDK mirrors these values in `ecgedge.errors.ErrorCode`. */
typedef enum {
    ECG_OK = 0,               /**< success */
    ECG_ERR_NULL = -1,        /**< a required pointer argument was NULL */
    ECG_ERR_RANGE = -2,       /**< a numeric configuration value is out of its documented range */
    ECG_ERR_CONFIG = -3,      /**< configuration values are inconsistent with each other */
    ECG_ERR_UNSUPPORTED = -4, /**< a valid request this build or device does not support */
    ECG_ERR_STATE = -5        /**< the call is not allowed in the object's current state */
} ecg_err_t;

/**
 * @brief Human-readable name of an error code.
 * @param[in] err  an ::ecg_err_t value
 * @return a static string; "" when the library is built with ECG_NO_ERRMSG.
 */
const char *ecg_err_str(ecg_err_t err);

#ifdef __cplusplus
}
#endif

#endif /* ECG_TYPES_H */
