#include "systick.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define CSR_ENABLE (1u << 0)
#define CSR_CLKSOURCE (1u << 2) /* 1: processor clock (25 MHz on MPS2) */

void systick_start(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR_REG = 0u; /* any write clears the counter; it reloads on the next tick */
    SYST_CSR = CSR_ENABLE | CSR_CLKSOURCE;
}
