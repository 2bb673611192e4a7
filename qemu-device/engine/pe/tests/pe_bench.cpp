// SPDX-License-Identifier: GPL-2.0-or-later
// kiln_pe_bench: interpreter MIPS, DPE GFLOP/s and SE bandwidth of one PE on
// one worker thread, each next to its host peer measured in the same run on
// the same data sizes: OpenBLAS sgemm on one thread (when built with it) and
// memcpy over the same bytes. Human-readable lines plus one "BENCH {json}"
// line per figure for scripts/bench. Not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "kbin_loader.hpp"
#include "pe_harness.hpp"
#include "pe_simd.h"

#ifdef KILN_PE_BENCH_OPENBLAS
#include <cblas.h>
#endif

using namespace kt;

namespace {

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Timing {
    double best, median;
};

// Runs @fn until @min_time seconds have passed (at least 3 times): best and
// median of the runs, so engine and peer see the same warm caches.
Timing measure(const std::function<void()> &fn, double min_time = 0.4)
{
    std::vector<double> t;
    double start = now();
    while (t.size() < 3 || now() - start < min_time) {
        double t0 = now();
        fn();
        t.push_back(now() - t0);
    }
    std::sort(t.begin(), t.end());
    return {t.front(), t[t.size() / 2]};
}

const char *kDtypes[] = {"fp32", "bf16", "fp16", "int8"};

}  // namespace

// usage: kiln_pe_bench [--only interp|dpe|se|launch] [kbin dir]
int main(int argc, char **argv)
{
    const char *dir = KILN_TEST_KBIN_DIR;
    std::string only;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else {
            dir = argv[i];
        }
    }
    auto want = [&](const char *part) { return only.empty() || only == part; };
    Machine m(1, 1, 1);
    Kbin kb = load_kbin(std::string(dir) + "/units.kbin", kKbinVa);
    memcpy(m.dram.data() + kKbinVa, kb.image.data(), kb.image.size());
    auto launch = [&](const char *k, const Args &a) {
        memcpy(m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        auto r = m.launch(kKbinVa + kb.kernels.at(k).entry, kArgsVa, 1, 1, 1, 0, 0, 100000);
        if (r.status != KILN_STATUS_OK) {
            fprintf(stderr, "%s failed: status %u pc %#lx\n", k, r.status, (unsigned long)r.pc);
            exit(1);
        }
        return r;
    };
    printf("host kernels: %s\n", kiln_simd_best()->name);
    printf("BENCH {\"bench\":\"pe_simd\",\"level\":\"%s\"}\n", kiln_simd_best()->name);
    if (want("interp")) {
        const uint32_t iters = 20000000;
        Args a(kb.kernels.at("bench_scalar"));
        a << m.alloc(64) << iters;
        KilnLaunchResult r{};
        double t = measure([&] { r = launch("bench_scalar", a); }, 0).best;
        printf("interpreter: %.1f M instructions/s (%lu instructions in %.3f s, %.2f emulated "
               "cycles/insn)\n",
               r.instructions / t / 1e6, (unsigned long)r.instructions, t,
               (double)r.cycles / r.instructions);
        printf("BENCH {\"bench\":\"pe_interp\",\"mips\":%.1f,\"iters\":%u,\"instructions\":%lu,"
               "\"s\":%.6f}\n",
               r.instructions / t / 1e6, iters, (unsigned long)r.instructions, t);
    }

    // The DPE on operands in local memory: one launch runs `iters` matmuls
    const uint32_t dim = 128, iters = 20;
    const double tile_flops = 2.0 * dim * dim * dim;
    for (uint32_t dt = 0; dt < 4 && want("dpe"); dt++) {
        Args a(kb.kernels.at("bench_dpe"));
        a << dim << iters << dt;
        KilnLaunchResult r{};
        Timing t = measure([&] { r = launch("bench_dpe", a); });
        double g = tile_flops * iters / t.best / 1e9;
        printf("DPE %s %ux%ux%u: %.2f GFLOP/s per thread (median %.2f; emulated %.1f GFLOP/s "
               "per PE)\n",
               kDtypes[dt], dim, dim, dim, g, tile_flops * iters / t.median / 1e9,
               tile_flops * iters / ((double)r.cycles / KILN_PE_CLOCK_HZ) / 1e9);
        printf("BENCH {\"bench\":\"pe_dpe\",\"dtype\":\"%s\",\"n\":%u,\"gflops_best\":%.2f,"
               "\"gflops\":%.2f}\n",
               kDtypes[dt], dim, g, tile_flops * iters / t.median / 1e9);
    }

    // A larger GEMM as a kernel does it: 128-tiles DMAed from device memory
    const uint32_t big = 512;
    const double big_flops = 2.0 * big * big * big;
    std::vector<float> ha((size_t)big * big), hb((size_t)big * big), hc((size_t)big * big);
    for (size_t i = 0; i < ha.size(); i++) {
        ha[i] = (float)((i * 7) % 13) * 0.125f - 0.75f;
        hb[i] = (float)((i * 5) % 11) * 0.0625f - 0.3125f;
    }
    if (want("dpe")) {
        uint64_t va = m.upload(ha), vb = m.upload(hb), vc = m.alloc(hc.size() * 4);
        Args a(kb.kernels.at("bench_gemm_tiled"));
        a << va << vb << vc << big;
        Timing t = measure([&] { launch("bench_gemm_tiled", a); });
        printf("DPE fp32 %ux%ux%u in 128-tiles via DMA: %.2f GFLOP/s per thread (median %.2f)\n",
               big, big, big, big_flops / t.best / 1e9, big_flops / t.median / 1e9);
        printf("BENCH {\"bench\":\"pe_dpe\",\"dtype\":\"fp32\",\"n\":%u,\"tiled\":true,"
               "\"gflops_best\":%.2f,\"gflops\":%.2f}\n",
               big, big_flops / t.best / 1e9, big_flops / t.median / 1e9);
    }
#ifdef KILN_PE_BENCH_OPENBLAS
    openblas_set_num_threads(1);
    for (uint32_t n : {dim, big}) {
        if (!want("dpe")) {
            break;
        }
        uint32_t reps = n == dim ? iters : 1;
        Timing t = measure([&] {
            for (uint32_t i = 0; i < reps; i++) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n,
                            1.0f, ha.data(), (int)n, hb.data(), (int)n, 1.0f, hc.data(), (int)n);
            }
        });
        double f = 2.0 * n * n * n * reps;
        printf("OpenBLAS sgemm %ux%ux%u, 1 thread: %.2f GFLOP/s (median %.2f)\n", n, n, n,
               f / t.best / 1e9, f / t.median / 1e9);
        printf("BENCH {\"bench\":\"pe_blas_peer\",\"n\":%u,\"threads\":1,\"gflops_best\":%.2f,"
               "\"gflops\":%.2f}\n",
               n, f / t.best / 1e9, f / t.median / 1e9);
    }
#else
    printf("OpenBLAS sgemm: not built in (libopenblas-dev missing)\n");
#endif

    // SE over local-memory rows vs host memcpy moving the same number of bytes
    const uint32_t n = 16384, se_iters = 50;
    struct {
        const char *name;
        uint32_t op;
        uint32_t bytes_per_elem;  // read + written
    } ses[] = {{"add", 0, 12}, {"cvt_f32_bf16", 1, 6}};
    std::vector<uint8_t> buf((size_t)n * 12);
    for (auto &s : ses) {
        if (!want("se")) {
            break;
        }
        Args a(kb.kernels.at("bench_se"));
        a << n << se_iters << s.op;
        Timing t = measure([&] { launch("bench_se", a); });
        double bytes = (double)n * s.bytes_per_elem * se_iters;
        size_t half = (size_t)n * s.bytes_per_elem / 2;
        Timing tm = measure([&] {
            for (uint32_t i = 0; i < se_iters; i++) {
                memcpy(buf.data(), buf.data() + half, half);
                __asm__ volatile("" ::: "memory");
            }
        });
        // the host kernel alone on the same rows: what the engine adds around it
        auto *f = reinterpret_cast<float *>(buf.data());
        Timing tk = measure([&] {
            for (uint32_t i = 0; i < se_iters; i++) {
                if (s.op == 0) {
                    kiln_simd_best()->se_row(KILN_SE_ADD, f, f + n, f + 2 * n, nullptr, 0, n);
                } else {
                    kiln_simd_best()->f32_to_bf16(reinterpret_cast<uint16_t *>(f), f + n, n);
                }
                __asm__ volatile("" ::: "memory");
            }
        });
        double se = bytes / t.best / 1e9, mc = bytes / tm.best / 1e9, kn = bytes / tk.best / 1e9;
        printf("SE %s: %.2f GB/s per thread (%u bytes/element read+written, %u elements); "
               "memcpy of the same bytes %.2f GB/s; ratio %.2f; host kernel alone %.2f GB/s "
               "(ratio %.2f)\n",
               s.name, se, s.bytes_per_elem, n, mc, se / mc, kn, kn / mc);
        printf("BENCH {\"bench\":\"pe_se\",\"op\":\"%s\",\"elems\":%u,\"gbps\":%.2f,"
               "\"memcpy_gbps\":%.2f,\"kernel_gbps\":%.2f}\n",
               s.name, n, se, mc, kn);
    }

    // Fixed per-launch and per-workgroup costs: 64 workgroups on an 8 x 8 grid
    if (want("launch")) {
        Machine g(8, 8, 1);
        memcpy(g.dram.data() + kKbinVa, kb.image.data(), kb.image.size());
        Args a(kb.kernels.at("bench_noop"));
        a << g.alloc(64 * 4);
        memcpy(g.dram.data() + kArgsVa, a.block.data(), a.block.size());
        uint64_t entry = kKbinVa + kb.kernels.at("bench_noop").entry;
        Timing t = measure([&] {
            auto r = g.launch(entry, kArgsVa, 64, 1, 1, 0, 0, 100000);
            if (r.status != KILN_STATUS_OK) {
                fprintf(stderr, "bench_noop failed: status %u\n", r.status);
                exit(1);
            }
        });
        printf("launch of 64 no-op workgroups (1 worker): %.1f us (median %.1f)\n", t.best * 1e6,
               t.median * 1e6);
        printf("BENCH {\"bench\":\"pe_launch\",\"workgroups\":64,\"us_best\":%.1f,"
               "\"us\":%.1f}\n",
               t.best * 1e6, t.median * 1e6);
    }
    return 0;
}
