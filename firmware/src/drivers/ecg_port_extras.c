/*
 * Backfill and update packages for the board ports (see ecg_port_extras.h).
 */
#include "ecg_port_extras.h"

#ifdef PORT_DEVICE_KEY
static const uint8_t k_device_key[] = PORT_DEVICE_KEY; /* -DPORT_DEVICE_KEY='{0x..,...}' */
#define DEVICE_KEY k_device_key, sizeof k_device_key
#else
#define DEVICE_KEY NULL, 0u /* no key: no update packages */
#endif

ecg_err_t ecg_port_attach_extras(ecg_port_extras_t *x, ecg_device_t *dev, const ecg_hal_t *hal,
                                 const uint8_t *key, size_t key_len)
{
    ecg_trainer_cfg_t tc;
    ecg_update_cfg_t uc;
    ecg_err_t err;
    if (x == NULL || dev == NULL) {
        return ECG_ERR_NULL;
    }
    err = ecg_backfill_init(&x->backfill, x->backfill_buf, sizeof x->backfill_buf);
    if (err != ECG_OK) {
        return err;
    }
    ecg_device_attach_backfill(dev, &x->backfill);
    ecg_trainer_default_cfg(&tc);
    err = ecg_trainer_init(&x->trainer, &tc);
    if (err != ECG_OK) {
        return err;
    }
    uc.hal = hal;
    uc.key = key;
    uc.key_len = key_len;
    uc.classifier = ecg_device_classifier(dev);
    uc.trainer = ecg_update_trainer_of(&x->trainer);
    err = ecg_update_init(&x->update, &uc);
    if (err != ECG_OK) {
        return err;
    }
    ecg_device_attach_update(dev, &x->update);
    return ECG_OK;
}

ecg_err_t ecg_port_begin(ecg_port_t *port, const ecg_port_desc_t *desc, ecg_hrm_cb_t hrm_cb,
                         void *hrm_ctx)
{
    const ecg_err_t err = ecg_port_device_init(&port->dev, &port->hal, desc, &port->tap, hrm_cb,
                                               hrm_ctx);
    if (err != ECG_OK) {
        return err;
    }
    port->links.link = ECG_PORT_LINK_STREAM;
    port->links.hrm_on = 0u;
    (void)ecg_port_attach_extras(&port->extras, &port->dev, &port->hal, DEVICE_KEY);
    return ECG_OK;
}
