#include "ecg/ecg_types.h"

const char *ecg_err_str(ecg_err_t err)
{
#ifdef ECG_NO_ERRMSG
    (void)err;
    return "";
#else
    switch (err) {
    case ECG_OK: return "ok";
    case ECG_ERR_NULL: return "NULL pointer argument";
    case ECG_ERR_RANGE: return "configuration value out of range";
    case ECG_ERR_CONFIG: return "inconsistent configuration";
    case ECG_ERR_UNSUPPORTED: return "not supported";
    case ECG_ERR_STATE: return "not allowed in the current state";
    default: return "unknown error";
    }
#endif
}
