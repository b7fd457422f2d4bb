/**
 * @file semihost.h
 * @brief ARM semihosting (BKPT 0xAB) calls used by the QEMU port: console output and exit.
 *
 * Only valid when the debugger / emulator has semihosting enabled (QEMU:
 * `-semihosting-config enable=on,target=native`); otherwise BKPT raises a HardFault.
 */
#ifndef QEMU_M4_SEMIHOST_H
#define QEMU_M4_SEMIHOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMIHOST_SYS_WRITE0 0x04u        /**< write a NUL-terminated string to the console */
#define SEMIHOST_SYS_GET_CMDLINE 0x15u   /**< {buffer, length}: the command line (-semihosting-config arg=) */
#define SEMIHOST_SYS_EXIT 0x18u          /**< exit; 32-bit form carries only a reason */
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20u /**< exit with {reason, subcode}: subcode = exit code */
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026u

/** @brief Raw semihosting call: operation in r0, parameter in r1; returns r0. */
int32_t semihost_call(uint32_t op, const void *arg);

/** @brief Write a NUL-terminated string to the host console (SYS_WRITE0). */
void semihost_write0(const char *s);

/**
 * @brief End the emulation with an exit status (SYS_EXIT_EXTENDED, ADP_Stopped_ApplicationExit).
 * QEMU exits with `code` as its own process status. Never returns.
 */
void semihost_exit(uint32_t code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* QEMU_M4_SEMIHOST_H */
