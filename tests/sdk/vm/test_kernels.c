// SPDX-License-Identifier: MIT
// Device kernels used by the SDK's in-VM tests (compiled by kiln-cc).
#include <kiln/device/kiln_device.h>

KILN_KERNEL void vadd(const float *a, const float *b, float *c, uint32_t n)
{
    for (uint32_t i = kiln_wg_id(); i < n; i += kiln_num_wg())
        c[i] = a[i] + b[i];
}

/* Stores to an address that is not mapped: an MMU fault. */
KILN_KERNEL void bad_store(float *out, uint64_t addr)
{
    out[0] = 1.0f;
    *(volatile float *)(uintptr_t)addr = 2.0f;
}

KILN_KERNEL void trap(uint64_t code)
{
    kiln_trap(code);
}

/* Busy loop: for timeout and watchdog tests. */
KILN_KERNEL void spin(uint64_t iters, uint64_t *out)
{
    volatile uint64_t acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc += i;
    out[kiln_wg_id()] = acc;
}

/* Spins until the host writes a non-zero @release: a job that cannot finish early. */
KILN_KERNEL void hold(const volatile uint32_t *release, uint64_t *out)
{
    uint64_t polls = 0;

    while (!*release)
        polls++;
    out[kiln_wg_id()] = polls;
}

/* Does nothing: a launch's own modelled cost. */
KILN_KERNEL void noop(void)
{
}

/* Streams @bytes from @src into local memory, 64 KiB at a time. */
KILN_KERNEL void stream(const uint8_t *src, uint32_t bytes)
{
    for (uint32_t off = 0; off < bytes; off += 65536)
        kiln_dma_copy(KILN_LM(uint8_t, 0), src + off, 65536, 0);
    kiln_dma_wait(1);
}

/* Debug channel: every workgroup says who it is. */
KILN_KERNEL void hello(uint32_t x)
{
    kiln_printf("hello from wg %u of %u on pe %u, x=%u\n", kiln_wg_id(), kiln_num_wg(), kiln_pe_id(), x);
}
