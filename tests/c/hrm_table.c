/*
 * Prints the firmware's Heart Rate Measurement value (ecg_hrm_encode) for a grid of RR intervals
 * at every protocol table rate, one "fs rr hex" line each; tests/test_drivers.py compares them with
 * the host's encoder (ecgedge.ble.gatt.hrm_from_rr), so the two sides of the profile agree.
 */
#include <stdio.h>

#include "ecg/ecg_protocol.h"
#include "ecg_hrm.h"

int main(void)
{
    unsigned bit;
    for (bit = 0; bit < ECG_PROTO_N_RATES; bit++) {
        const uint16_t fs = ecg_proto_rate_hz(bit);
        uint32_t rr;
        for (rr = 0; rr <= 65535u; rr = rr < 2000u ? rr + 1u : rr * 2u + 1u) {
            uint8_t v[ECG_HRM_MAX_LEN];
            const size_t n = ecg_hrm_encode((uint16_t)rr, fs, v);
            size_t i;
            printf("%u %lu ", fs, (unsigned long)rr);
            for (i = 0; i < n; i++) {
                printf("%02x", v[i]);
            }
            printf("\n");
        }
    }
    return 0;
}
