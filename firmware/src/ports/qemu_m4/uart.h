/**
 * @file uart.h
 * @brief Polled driver for the ARM CMSDK APB UART (UART0 of mps2-an386 at 0x40004000).
 *
 * Transmit and receive, no interrupts. QEMU does not pace the UART to the baud rate, but the
 * divider is programmed as on hardware (25 MHz / 115200). Small formatting helpers print numbers
 * without pulling printf into the image.
 */
#ifndef QEMU_M4_UART_H
#define QEMU_M4_UART_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UART0_BASE 0x40004000u
#define MPS2_SYSCLK_HZ 25000000u /**< APB and core clock of the MPS2 FPGA images */

/** @brief Enable TX and RX at `baud` (divider computed from ::MPS2_SYSCLK_HZ). */
void uart_init(uint32_t baud);

/** @brief Send one byte, waiting while the transmit buffer is full. */
void uart_putc(char c);

/** @brief Send a NUL-terminated string ("\n" is sent as is). */
void uart_puts(const char *s);

/** @brief Send an unsigned decimal number. */
void uart_put_u32(uint32_t v);
void uart_put_u64(uint64_t v);

/** @brief Send a signed decimal number. */
void uart_put_i32(int32_t v);

/** @brief Send "0x" and 8 hex digits. */
void uart_put_hex32(uint32_t v);

/** @brief Receive one byte if one is waiting; returns -1 otherwise. */
int uart_getc_nonblock(void);

/**
 * @brief Wait for one byte from the host, polling at most `max_polls` times.
 * @return the byte, or -1 on timeout.
 *
 * Images call this before exiting so the host has read all output first: QEMU closes the TCP
 * serial socket when the guest exits, and a client may drop bytes still in flight (pyserial's
 * socket:// discards a partial read when it sees the disconnect).
 */
int uart_wait_byte(uint32_t max_polls);

#ifdef __cplusplus
}
#endif

#endif /* QEMU_M4_UART_H */
