#include "ecg/ecg_crc.h"

/* T[i] = (i << 12) shifted through the polynomial four times: the CRC contribution of a nibble
 * that reaches the top of the register. */
static const uint16_t crc16_nibble_table[16] = {
    0x0000u, 0x1021u, 0x2042u, 0x3063u, 0x4084u, 0x50A5u, 0x60C6u, 0x70E7u,
    0x8108u, 0x9129u, 0xA14Au, 0xB16Bu, 0xC18Cu, 0xD1ADu, 0xE1CEu, 0xF1EFu,
};

uint16_t ecg_crc16_update(uint16_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    if (data == NULL) {
        return crc;
    }
    for (i = 0; i < len; ++i) {
        unsigned int c = crc;
        unsigned int b = data[i];
        /* high nibble of the byte first (MSB-first, no reflection) */
        c = ((c << 4) ^ crc16_nibble_table[((c >> 12) ^ (b >> 4)) & 0xFu]) & 0xFFFFu;
        c = ((c << 4) ^ crc16_nibble_table[((c >> 12) ^ b) & 0xFu]) & 0xFFFFu;
        crc = (uint16_t)c;
    }
    return crc;
}

uint16_t ecg_crc16_ccitt(const uint8_t *data, size_t len)
{
    return ecg_crc16_update((uint16_t)ECG_CRC16_INIT, data, len);
}

/* Reflected CRC-32, four bits at a time: T[i] = i shifted through the polynomial four times. */
static const uint32_t crc32_nibble_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u,
    0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u,
    0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ecg_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    if (data == NULL) {
        return crc;
    }
    crc = ~crc;
    for (i = 0; i < len; ++i) {
        crc ^= data[i];
        /* low nibble first (reflected) */
        crc = (crc >> 4) ^ crc32_nibble_table[crc & 0xFu];
        crc = (crc >> 4) ^ crc32_nibble_table[crc & 0xFu];
    }
    return ~crc;
}
