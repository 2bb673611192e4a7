// SPDX-License-Identifier: MIT
// Device kernels of the stress suite (compiled by kiln-cc): benign
// checksummed work, and hostile kernels that spin, fault, trap, scribble and
// probe other contexts' memory. Arguments are all 8 bytes wide so the host
// side can pack them as an array of u64.
#include <kiln/device/kiln_device.h>

/* Benign: out[i] = in[i] * 3 + 1, and out[n] = sum of out[0..n). */
KILN_KERNEL void stress_checksum(const uint64_t *in, uint64_t *out, uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = in[i] * 3 + 1;
        out[i] = v;
        sum += v;
    }
    out[n] = sum;
}

/* Never returns: ends by the cycle watchdog or the driver's hang handling. */
KILN_KERNEL void stress_spin(uint64_t *out)
{
    volatile uint64_t i = 0;
    for (;;)
        i++;
}

KILN_KERNEL void stress_null_store(uint64_t *out)
{
    *(volatile uint64_t *)(uintptr_t)0 = 1;
}

/* Loads one u64 at any address (a guessed VA, a raw physical address). */
KILN_KERNEL void stress_load(uint64_t addr, uint64_t *out)
{
    out[0] = *(volatile uint64_t *)(uintptr_t)addr;
    out[1] = *(volatile uint64_t *)(uintptr_t)(addr + 8);
}

/* Stores a pattern at any address. */
KILN_KERNEL void stress_store(uint64_t addr, uint64_t value)
{
    *(volatile uint64_t *)(uintptr_t)addr = value;
}

/* DMA 64 bytes from any address into local memory, then to out. */
KILN_KERNEL void stress_dma_probe(uint64_t addr, uint64_t *out)
{
    kiln_dma_copy(KILN_LM(void, 0), (const void *)(uintptr_t)addr, 64, 0);
    kiln_dma_wait_all();
    kiln_dma_copy(out, KILN_LM(void, 0), 64, 1);
    kiln_dma_wait_all();
}

/* Scribbles over its own buffer and keeps going past the end. */
KILN_KERNEL void stress_scribble(uint64_t *buf, uint64_t words, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (uint64_t i = 0; i < words + 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = x;
    }
}

/* Jumps to an address taken from its argument (random code, data pages). */
KILN_KERNEL void stress_jump(uint64_t target)
{
    ((void (*)(void))(uintptr_t)target)();
}

KILN_KERNEL void stress_illegal(uint64_t *out)
{
    __asm__ volatile(".word 0x00000000");
}

KILN_KERNEL void stress_trap(uint64_t code)
{
    kiln_trap(code);
}

KILN_KERNEL void stress_local_oob(uint64_t off)
{
    *(volatile uint64_t *)(uintptr_t)(KILN_LOCAL_MEM_BASE + (1ull << 30) + off) = 1;
}

KILN_KERNEL void stress_misaligned(uint64_t *buf)
{
    *(volatile uint64_t *)((uintptr_t)buf + 3) = 1;
    __asm__ volatile("jalr x0, 2(%0)" :: "r"(buf));
}
