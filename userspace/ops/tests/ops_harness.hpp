// SPDX-License-Identifier: MIT
// The op-library kernels (build/userspace/ops/*.kbin) loaded on a PE-engine
// Machine (qemu-device/engine/pe/tests/pe_harness.hpp), for ops_test and
// ops_perf_test.
#pragma once

#include <map>
#include <random>
#include <string>

#include "kbin_loader.hpp"
#include "pe_harness.hpp"

namespace kt {

struct Ops {
    Machine m;
    std::map<std::string, Kbin> libs;
    std::map<std::string, std::pair<std::string, uint64_t>> where;   // kernel -> lib, base
    explicit Ops(uint32_t workers = 1, uint32_t gw = 2, uint32_t gh = 2, uint64_t dram = kDramSize,
                 uint64_t sram = 1 << 20, const std::string &dir = KILN_OPS_DIR)
        : m(gw, gh, workers, dram, sram)
    {
        uint64_t base = kKbinVa;
        for (const char *lib : {"gemm", "eltwise", "softmax", "embedding", "transpose", "optim"}) {
            Kbin k = load_kbin(dir + "/" + lib + ".kbin", base);
            memcpy(m.dram.data() + base, k.image.data(), k.image.size());
            for (auto &kv : k.kernels) where[kv.first] = {lib, base};
            base += (k.image.size() + 0xffff) & ~0xffffull;
            libs[lib] = std::move(k);
        }
    }
    const KernelInfo &info(const std::string &k) { return libs.at(where.at(k).first).kernels.at(k); }
    Args args(const std::string &k) { return Args(info(k)); }
    KilnLaunchResult run(const std::string &k, const Args &a, uint32_t grid = 8)
    {
        memcpy(m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        return m.launch(where.at(k).second + info(k).entry, kArgsVa, grid, 1, 1,
                        (info(k).flags & KILN_META_KERNEL_COOPERATIVE) ? KILN_LAUNCH_FLAG_COOPERATIVE : 0,
                        0, 0, 0, 0,
                        (uint32_t)a.block.size());
    }
};

inline std::vector<float> randv(size_t n, float lo, float hi, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> U(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = U(rng);
    return v;
}

inline uint16_t bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
inline float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

}  // namespace kt
