/*
 * Helpers shared by the board ports (see ecg_port_util.h).
 */
#include "ecg_port_util.h"

uint64_t ecg_time_extend(ecg_time_ext_t *t, uint32_t now)
{
    if (now < t->last) {
        t->high++;
    }
    t->last = now;
    return ((uint64_t)t->high << 32) | now;
}

uint8_t ecg_battery_pct(uint32_t mv, uint32_t empty_mv, uint32_t full_mv)
{
    if (full_mv <= empty_mv || mv <= empty_mv) {
        return 0u;
    }
    if (mv >= full_mv) {
        return 100u;
    }
    return (uint8_t)(((mv - empty_mv) * 100u + (full_mv - empty_mv) / 2u) / (full_mv - empty_mv));
}
