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
 * Everything is static (no heap): `ecg_device_t` (~26 KB), the RX ring, the RAM vector table.
 * The main loop: received bytes -> ecg_device_rx; ecg_device_poll (pipeline, deferred STOP,
 * STATUS, draining the queue into the UART) when a frame arrived, a millisecond passed or work
 * is pending; sleep (WFI) when there is nothing to do, so an idle guest costs the host no CPU.
 * Throughput under QEMU is bounded by its UART model (one byte per turn of QEMU's main loop,
 * about 40 kB/s into the guest): a 30-minute 360 Hz record injects in about 36 s. The image runs until QEMU is killed (the protocol has no
 * "exit" command); a fault or a failed init ends the emulation with a semihosting exit code
 * (port.h: 0x80 + exception number; 1: device init failed).
 *
 * Update packages (docs/protocol.md §11): the storage slots are a RAM region that survives a
 * QEMU `system_reset` (hal_qemu.h); the per-device key comes from the semihosting command line,
 * `-semihosting-config enable=on,target=native,arg=device.elf,arg=--device-key,arg=HEX`
 * (the SDK's `qemu://?key=HEX`). Without a key the device takes no packages. HEAD and LABELS
 * packages: the µ-trainer's ring is built with ECG_TRAINER_MAX_BEATS = 640 here (firmware/qemu/
 * Makefile), enough for a 5-minute learning period, so the image stays within its 48 KB of
 * static RAM (tests/test_hil.py).
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
static ecg_update_t g_update;
static ecg_trainer_t g_trainer;

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The key after "--device-key" on the semihosting command line (SYS_GET_CMDLINE); 0 bytes when
 * there is none or it is not hex. */
static size_t device_key(uint8_t key[ECG_UPDATE_MAX_KEY_LEN])
{
    static char line[512];
    struct {
        char *buf;
        uint32_t len;
    } arg = {line, sizeof line - 1u};
    const char *p;
    size_t n = 0;
    if (semihost_call(SEMIHOST_SYS_GET_CMDLINE, &arg) != 0) {
        return 0u;
    }
    line[arg.len < sizeof line ? arg.len : sizeof line - 1u] = '\0';
    for (p = line; *p != '\0'; p++) {
        const char *opt = "--device-key ";
        size_t k = 0;
        while (opt[k] != '\0' && p[k] == opt[k]) {
            k++;
        }
        if (opt[k] == '\0') {
            p += k;
            while (n < ECG_UPDATE_MAX_KEY_LEN && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
                key[n++] = (uint8_t)(hexval(p[0]) * 16 + hexval(p[1]));
                p += 2;
            }
            return (*p == '\0' || *p == ' ') ? n : 0u;
        }
    }
    return 0u;
}

/* Storage, key, classifier and µ-trainer for update packages; restores the active head. */
static void attach_update(void)
{
    static uint8_t key[ECG_UPDATE_MAX_KEY_LEN];
    ecg_update_cfg_t uc;
    uc.hal = &g_hal;
    uc.key = key;
    uc.key_len = device_key(key);
    uc.classifier = ecg_device_classifier(&g_dev);
    {
        ecg_trainer_cfg_t tc;
        ecg_trainer_default_cfg(&tc);
        (void)ecg_trainer_init(&g_trainer, &tc);
        uc.trainer = ecg_update_trainer_of(&g_trainer);
    }
    if (ecg_update_init(&g_update, &uc) == ECG_OK) {
        ecg_device_attach_update(&g_dev, &g_update);
    }
    semihost_write0(uc.key_len != 0u ? "ecgedge device: update packages on (device key given)\n"
                                     : "ecgedge device: no --device-key: no update packages\n");
}

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
    attach_update();
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
