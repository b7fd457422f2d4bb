/**
 * @file port.h
 * @brief What the QEMU Cortex-M4 port (mps2-an386) offers to its applications.
 *
 * startup.c provides the vector table and the reset handler: it enables the FPU (CPACR CP10/CP11
 * full access), copies .data, zeroes .bss, paints the unused main stack with a pattern, calls
 * `int main(void)` and ends the emulation with main's return value as the semihosting exit code.
 * A fault prints its name over semihosting and exits with code 0x80 + exception number.
 */
#ifndef QEMU_M4_PORT_H
#define QEMU_M4_PORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PORT_EXIT_FAULT_BASE 0x80u /**< exit code of a fault: 0x80 + exception number */

/** @brief Bytes reserved for the main stack (linker symbol STACK_SIZE). */
uint32_t port_stack_size(void);

/**
 * @brief High-water mark of the main stack since reset, in bytes: the painted pattern is scanned
 * from the stack limit upwards. Includes the reset handler's own frame.
 */
uint32_t port_stack_used(void);

int main(void);

#ifdef __cplusplus
}
#endif

#endif /* QEMU_M4_PORT_H */
