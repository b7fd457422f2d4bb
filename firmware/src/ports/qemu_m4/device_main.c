/*
 * The ecgedge device firmware on QEMU's mps2-an386 (Cortex-M4F): the portable `ecg_device`
 * (signal pipeline, command handler, outgoing queue) behind the wire protocol
 * (docs/protocol.md) on UART0, which QEMU connects to a TCP socket or a pty:
 *
 *     qemu-system-arm -M mps2-an386 -nographic -monitor none \
 *         -kernel firmware/build/qemu/o2/device.elf \
 *         -serial tcp:127.0.0.1:4444,server=on,wait=on \
 *         -semihosting-config enable=on,target=native
 *     # host: socket://127.0.0.1:4444 (ecgedge.validation.hil, the SDK's qemu:// transport)
 *
 * Device: 1 lead, 5 µV/count, 360 Hz (every table rate may be configured; RATE_CONFIG), 60 Hz
 * notch by default (the excerpt is MIT-BIH, recorded on 60 Hz mains; CONFIGURE changes it),
 * raw samples + beats, front end as the source, STATUS every second, model 0xA386.
 * Sources (CONFIGURE): the front end is the compiled-in excerpt played in real time by SysTick
 * (360 Hz only, see hal_qemu.h); injection (INJECT_SAMPLES, §5.3) runs at full speed with flow
 * control, at any table rate.
 *
 * Everything is static (no heap): `ecg_device_t` (~14 KB), the RX ring, the RAM vector table.
 * The main loop: received bytes -> ecg_device_rx; ecg_device_poll (pipeline, deferred STOP,
 * STATUS, draining the queue into the UART) when a frame arrived, a millisecond passed or work
 * is pending; sleep (WFI) when there is nothing to do, so an idle guest costs the host no CPU.
 * Throughput under QEMU is bounded by its UART model (one byte per turn of QEMU's main loop,
 * about 40 kB/s into the guest): a 30-minute 360 Hz record injects in about 36 s. The image runs until QEMU is killed (the protocol has no
 * "exit" command); a fault or a failed init ends the emulation with a semihosting exit code
 * (port.h: 0x80 + exception number; 1: device init failed).
 *
 * Links: UART0 has no modem lines, so the device cannot tell a host connected: it sends its
 * boot DEVICE_INFO once (QEMU's `wait=on` holds the guest until the first client connects, so
 * that client receives it); a later client starts with GET_INFO. Bytes the device sends while
 * no client is connected are discarded by QEMU.
 */
#include <stdint.h>

#include "ecg/ecg_device.h"
#include "hal_qemu.h"
#include "port.h"
#include "semihost.h"

#ifndef QEMU_DEVICE_NO_EXCERPT
#include "ecg_excerpt.h"
#define DEVICE_GAIN_UV_PER_COUNT (1000.0f / ECG_EXCERPT_GAIN) /* 5 µV/count: 200 adu/mV */
#else
#define DEVICE_GAIN_UV_PER_COUNT 5.0f
#endif

#ifndef DEVICE_MAINS_HZ
#define DEVICE_MAINS_HZ 60u
#endif
#define DEVICE_RATE_HZ 360u
#define DEVICE_RATES_MASK 0x00FFu /* all eight table rates (§6.2) */
#define DEVICE_MODEL_ID 0xA386u   /* mps2-an386 */
#define DEVICE_FW_MAJOR 0u
#define DEVICE_FW_MINOR 1u
#define DEVICE_FW_PATCH 0u
#define DEVICE_STATUS_PERIOD_MS 1000u
#define DEVICE_EXIT_INIT_FAILED 1
#define RX_CHUNK 256u

static ecg_device_t g_dev;
static ecg_hal_t g_hal;

int main(void)
{
    ecg_device_cfg_t cfg;
    static uint8_t rx[RX_CHUNK];
    uint32_t last_tick = 0u;
    int busy = 1;

    ecg_device_default_cfg(&cfg);
    cfg.sample_rate_hz = DEVICE_RATE_HZ;
    cfg.rates_mask = DEVICE_RATES_MASK;
    cfg.leads = 1u;
    cfg.qrs_lead = 0u;
    cfg.gain_uv_per_count = DEVICE_GAIN_UV_PER_COUNT;
    cfg.mains_hz = DEVICE_MAINS_HZ;
    cfg.content = ECG_CONTENT_RAW;
    cfg.source = ECG_SOURCE_FRONT_END;
    cfg.fw_major = DEVICE_FW_MAJOR;
    cfg.fw_minor = DEVICE_FW_MINOR;
    cfg.fw_patch = DEVICE_FW_PATCH;
    cfg.model_id = DEVICE_MODEL_ID;
    cfg.status_period_ms = DEVICE_STATUS_PERIOD_MS;
    cfg.block_samples = 0u; /* full blocks: 115 instants */

    hal_qemu_init(&g_hal, &g_dev);
    if (ecg_device_init(&g_dev, &cfg, &g_hal) != ECG_OK) {
        semihost_write0("ecgedge device: ecg_device_init failed\n");
        return DEVICE_EXIT_INIT_FAILED;
    }
    semihost_write0("ecgedge device (qemu_m4, mps2-an386): protocol v1 on UART0\n");

    for (;;) {
        const size_t n = hal_qemu_rx(rx, sizeof rx);
        const uint32_t tick = hal_qemu_ticks();
        size_t frames = 0u;
        if (n != 0u) {
            frames = ecg_device_rx(&g_dev, rx, n);
        }
        /* Poll when something may be due: a frame arrived, a millisecond passed (STATUS, the
         * front end's samples), or samples / frames are still waiting. Not for every received
         * byte: the poll reads the clock, and under QEMU each register access is costly. */
        if (frames != 0u || tick != last_tick || busy) {
            last_tick = tick;
            busy = ecg_device_poll(&g_dev) != 0u || ecg_device_tx_pending(&g_dev) != 0u;
            if (busy && ecg_device_tx_pending(&g_dev) != 0u && hal_qemu_tx_busy()) {
                busy = 0; /* the host is not reading: retry on the next tick */
            }
        }
        if (n == 0u && !busy) {
            hal_qemu_idle(); /* until a byte, the next millisecond tick, or a front-end sample */
        }
    }
}
