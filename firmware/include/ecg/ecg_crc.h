/**
 * @file ecg_crc.h
 * @brief CRC-16/CCITT-FALSE, the frame check of the wire protocol (docs/protocol.md §1), and
 *        CRC-32 (zlib's), the payload check of update packages.
 *
 * Parameters: width 16, polynomial 0x1021, init 0xFFFF, no input/output reflection, xorout 0.
 * Check value: ecg_crc16_ccitt("123456789", 9) == 0x29B1 (::ECG_CRC16_CHECK).
 * Python's `binascii.crc_hqx(data, 0xFFFF)` computes the same function.
 *
 * Implementation: MSB-first, four bits at a time through a 16-entry table of `uint16_t`
 * (32 bytes of read-only data); about 2 table look-ups per byte.
 *
 * \note Pure functions: no state, re-entrant, safe from ISRs.
 */
#ifndef ECG_CRC_H
#define ECG_CRC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_CRC16_INIT 0xFFFFu  /**< initial value */
#define ECG_CRC16_CHECK 0x29B1u /**< CRC of the ASCII string "123456789" */

/**
 * @brief Continue a CRC over more bytes.
 * @param[in] crc   CRC so far (::ECG_CRC16_INIT to start)
 * @param[in] data  bytes; may be NULL when `len` is 0
 * @param[in] len   number of bytes
 * @return the updated CRC
 */
uint16_t ecg_crc16_update(uint16_t crc, const uint8_t *data, size_t len);

/**
 * @brief CRC-16/CCITT-FALSE of a whole buffer.
 * @param[in] data  bytes; may be NULL when `len` is 0
 * @param[in] len   number of bytes
 * @return the CRC (0xFFFF for an empty buffer)
 */
uint16_t ecg_crc16_ccitt(const uint8_t *data, size_t len);

#define ECG_CRC32_CHECK 0xCBF43926u /**< CRC-32 of the ASCII string "123456789" */

/**
 * @brief Continue a CRC-32 (ISO-HDLC: the zlib / Ethernet CRC, reflected polynomial 0xEDB88320,
 *        init and xorout 0xFFFFFFFF) over more bytes; Python's `zlib.crc32(data, crc)` is the same
 *        function. The payload check of update packages (ecg_update.h).
 * @param[in] crc   CRC so far (0 to start: the init and final XOR are applied inside)
 * @param[in] data  bytes; may be NULL when `len` is 0
 * @param[in] len   number of bytes
 * @return the CRC of everything so far (0 for an empty buffer)
 */
uint32_t ecg_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ECG_CRC_H */
