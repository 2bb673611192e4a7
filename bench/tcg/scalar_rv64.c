// SPDX-License-Identifier: MIT
/*
 * The TCG anchor of `make bench` (docs/performance.md, interp_vs_tcg): the loop
 * of bench/kernels/bench.c's bench_scalar, unchanged, as a static riscv64
 * Linux program without libc, for QEMU's user-mode translator:
 *   clang --target=riscv64-linux-gnu -march=rv64imafd -O2 -ffreestanding -nostdlib -static -fuse-ld=lld
 *   qemu-riscv64 ./scalar_rv64 ITERS
 * Local memory is a static 4 KiB array here; the result goes to a volatile
 * sink so the loop is not optimised away.
 */
#include <stdint.h>

static uint32_t lm[1024];
volatile uint64_t sink;

static uint64_t parse(const char *s)
{
    uint64_t v = 0;
    while (s && *s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    return v;
}

static void bench_scalar(uint32_t iters)
{
    uint64_t x = 88172645463325252ull, acc = 0;
    for (uint32_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lm[i & 1023] += (uint32_t)x;
        acc += lm[(i * 7) & 1023];
    }
    sink = acc;
}

__attribute__((used)) void kiln_tcg_main(uint64_t *sp)
{
    bench_scalar((uint32_t)parse(sp[0] > 1 ? (const char *)sp[2] : 0));
    register long a0 __asm__("a0") = 0;
    register long a7 __asm__("a7") = 93; /* exit */
    __asm__ volatile("ecall" : : "r"(a0), "r"(a7));
    __builtin_unreachable();
}

__asm__(".globl _start\n_start:\n  mv a0, sp\n  call kiln_tcg_main\n");
