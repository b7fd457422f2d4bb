/*
 * ESP32-S3 port: the ecg_hal_t entries (ecg_hal.h rules).
 *
 *  - time_us: esp_timer_get_time(), the 64-bit microsecond clock of ESP-IDF.
 *  - critical sections: a portMUX spinlock (portENTER_CRITICAL), which nests on one core and also
 *    excludes the other core; ecg_device_push_samples takes it from the sampling task.
 *  - sampling_*: the front end: afe_start/afe_stop (afe_esp32s3.cpp) and ecg_afe_hal_set_rate
 *    (the rate check, ecg_afe.h).
 *  - write: NULL; main.cpp drains the queue to the link in use (ecg_port_link.h).
 *  - storage_*: the data partitions ecg_head_a, ecg_head_b, ecg_labels of partitions.csv through
 *    esp_partition_* (erase works on 4 KB sectors: a slot is erased whole; writes and reads take any
 *    offset and length, NOR semantics: a write only clears bits of the erased slot).
 *
 * Not verified here: nothing of this file is compiled in CI (no Xtensa toolchain).
 */
#include <Arduino.h>
#include <esp_partition.h>
#include <esp_timer.h>

#include "port.h"

static portMUX_TYPE s_mux = portMUX_INITIALIZER_UNLOCKED;
static const char *const SLOT_LABELS[] = {"ecg_head_a", "ecg_head_b", "ecg_labels"};
static const esp_partition_subtype_t SLOT_SUBTYPE = (esp_partition_subtype_t)0x40;

static uint64_t hal_time_us(void *ctx)
{
    (void)ctx;
    return (uint64_t)esp_timer_get_time();
}

static void hal_critical_enter(void *ctx)
{
    (void)ctx;
    portENTER_CRITICAL(&s_mux);
}

static void hal_critical_exit(void *ctx)
{
    (void)ctx;
    portEXIT_CRITICAL(&s_mux);
}

static const esp_partition_t *slot_partition(ecg_hal_slot_t slot)
{
    if ((unsigned)slot >= sizeof SLOT_LABELS / sizeof SLOT_LABELS[0]) {
        return NULL;
    }
    return esp_partition_find_first(ESP_PARTITION_TYPE_DATA, SLOT_SUBTYPE, SLOT_LABELS[slot]);
}

/* The slot's partition when [offset, offset + len) lies inside it; else NULL and `*err` says why. */
static const esp_partition_t *slot_span(ecg_hal_slot_t slot, uint32_t offset, size_t len,
                                        ecg_err_t *err)
{
    const esp_partition_t *p = slot_partition(slot);
    *err = p == NULL ? ECG_ERR_UNSUPPORTED : ECG_ERR_RANGE;
    return p != NULL && (uint64_t)offset + len <= p->size ? p : NULL;
}

static uint32_t hal_storage_size(void *ctx, ecg_hal_slot_t slot)
{
    const esp_partition_t *p = slot_partition(slot);
    (void)ctx;
    return p != NULL ? (uint32_t)p->size : 0u;
}

static ecg_err_t hal_storage_erase(void *ctx, ecg_hal_slot_t slot)
{
    const esp_partition_t *p = slot_partition(slot);
    (void)ctx;
    if (p == NULL) {
        return ECG_ERR_UNSUPPORTED;
    }
    return esp_partition_erase_range(p, 0, p->size) == ESP_OK ? ECG_OK : ECG_ERR_STATE;
}

static ecg_err_t hal_storage_write(void *ctx, ecg_hal_slot_t slot, uint32_t offset,
                                   const uint8_t *data, size_t len)
{
    ecg_err_t err;
    const esp_partition_t *p = slot_span(slot, offset, len, &err);
    (void)ctx;
    if (p == NULL) {
        return err;
    }
    return esp_partition_write(p, offset, data, len) == ESP_OK ? ECG_OK : ECG_ERR_STATE;
}

static ecg_err_t hal_storage_read(void *ctx, ecg_hal_slot_t slot, uint32_t offset, uint8_t *data,
                                  size_t len)
{
    ecg_err_t err;
    const esp_partition_t *p = slot_span(slot, offset, len, &err);
    (void)ctx;
    if (p == NULL) {
        return err;
    }
    return esp_partition_read(p, offset, data, len) == ESP_OK ? ECG_OK : ECG_ERR_STATE;
}

void hal_esp32s3_init(ecg_hal_t *hal, ecg_afe_t *afe)
{
    /* in ecg_hal_t's declaration order; the assert stops the build if the struct changes */
    static_assert(sizeof(ecg_hal_t) == 12u * sizeof(void *), "ecg_hal_t changed: update the table");
    *hal = ecg_hal_t{afe, hal_time_us, NULL /* write: main.cpp drains the queue */,
                     afe_start, afe_stop, ecg_afe_hal_set_rate,
                     hal_critical_enter, hal_critical_exit,
                     hal_storage_size, hal_storage_erase, hal_storage_write, hal_storage_read};
}
