// SPDX-License-Identifier: GPL-2.0-or-later
// kiln_pe_bench: interpreter MIPS, DPE GFLOP/s and SE bandwidth per thread
// (one PE, one worker). Not a test; for the benchmarks engineer.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kbin_loader.hpp"
#include "pe_harness.hpp"

using namespace kt;

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : KILN_TEST_KBIN_DIR;
    Machine m(1, 1, 1);
    Kbin kb = load_kbin(std::string(dir) + "/units.kbin", kKbinVa);
    memcpy(m.dram.data() + kKbinVa, kb.image.data(), kb.image.size());
    auto run = [&](const char *k, Args &a) {
        memcpy(m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        double t0 = now();
        auto r = m.launch(kKbinVa + kb.kernels.at(k).entry, kArgsVa, 1, 1, 1, 0, 0, 100000);
        double t = now() - t0;
        if (r.status != KILN_STATUS_OK) {
            fprintf(stderr, "%s failed: status %u pc %#lx\n", k, r.status, (unsigned long)r.pc);
            exit(1);
        }
        return std::make_pair(r, t);
    };
    {
        Args a(kb.kernels.at("bench_scalar"));
        a << m.alloc(64) << 20000000u;
        auto [r, t] = run("bench_scalar", a);
        printf("interpreter: %.1f M instructions/s (%lu instructions in %.3f s, %.2f emulated cycles/insn)\n",
               r.instructions / t / 1e6, (unsigned long)r.instructions, t,
               (double)r.cycles / r.instructions);
    }
    const char *names[] = {"fp32", "bf16", "fp16", "int8"};
    for (uint32_t dt = 0; dt < 4; dt++) {
        uint32_t dim = 128, iters = dt == 0 ? 200 : 100;
        Args a(kb.kernels.at("bench_dpe"));
        a << dim << iters << dt;
        auto [r, t] = run("bench_dpe", a);
        double flops = 2.0 * dim * dim * dim * iters;
        printf("DPE %s %ux%ux%u: %.2f GFLOP/s per thread (emulated %.1f GFLOP/s per PE)\n",
               names[dt], dim, dim, dim, flops / t / 1e9,
               flops / ((double)r.cycles / KILN_PE_CLOCK_HZ) / 1e9);
    }
    {
        uint32_t n = 16384, iters = 2000;
        Args a(kb.kernels.at("bench_se"));
        a << n << iters;
        auto [r, t] = run("bench_se", a);
        printf("SE add: %.2f GB/s per thread (3 x 4 bytes per element)\n",
               12.0 * n * iters / t / 1e9);
    }
    return 0;
}
