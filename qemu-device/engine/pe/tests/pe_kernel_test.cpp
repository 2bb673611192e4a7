// SPDX-License-Identifier: GPL-2.0-or-later
// Kernels compiled with kiln-cc running on the PE engine, vs CPU references.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "kbin_loader.hpp"
#include "pe_harness.hpp"

using namespace kt;

namespace {

struct Env {
    Machine m;
    Kbin kb;
    explicit Env(uint32_t workers = 1, uint32_t gw = 2, uint32_t gh = 2,
                 const char *kbin = KILN_TEST_KBIN_DIR "/units.kbin")
        : m(gw, gh, workers)
    {
        kb = load_kbin(kbin, kKbinVa);
        memcpy(m.dram.data() + kKbinVa, kb.image.data(), kb.image.size());
    }
    Args args(const char *k) { return Args(kb.kernels.at(k)); }
    KilnLaunchResult run(const char *k, const Args &a, uint32_t gx = 1, uint32_t flags = 0,
                         uint64_t dbg = 0, uint32_t dbg_size = 0)
    {
        memcpy(m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        return m.launch(kKbinVa + kb.kernels.at(k).entry, kArgsVa, gx, 1, 1, flags, 0, 0, dbg,
                        dbg_size, (uint32_t)a.block.size());
    }
};

struct DebugRec {
    uint32_t wg, pe;
    std::string text;
    uint32_t dropped;
    bool operator==(const DebugRec &) const = default;
    friend std::ostream &operator<<(std::ostream &o, const DebugRec &r)
    {
        return o << "{wg " << r.wg << ", pe " << r.pe << ", \"" << r.text << "\", dropped " << r.dropped
                 << "}";
    }
};

// The records of a debug buffer (struct kiln_debug_header, then records padded to 8).
std::vector<DebugRec> debug_records(Env &e, uint64_t dbg)
{
    std::vector<DebugRec> out;
    auto *h = e.m.at<kiln_debug_header>(dbg);
    for (uint64_t off = 0; off + sizeof(kiln_debug_record) <= h->used;) {
        auto *r = e.m.at<kiln_debug_record>(dbg + sizeof(*h) + off);
        out.push_back({r->wg, r->pe, std::string(e.m.at<char>(dbg + sizeof(*h) + off + sizeof(*r)), r->len),
                       r->dropped});
        off += (sizeof(*r) + r->len + 7) & ~uint64_t(7);
    }
    return out;
}

float bf16_ref(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Independent RNE reference for f32 -> bf16: pick the nearer neighbour, ties to even.
uint16_t to_bf16_ref(float f)
{
    if (std::isnan(f)) return 0x7fc0;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dl = std::fabs((double)f - (double)bf16_ref(lo));
    double dh = std::isinf(bf16_ref(hi)) && !std::isinf(f)
                    ? std::fabs((double)f - 0x1p128 * (f < 0 ? -1 : 1))
                    : std::fabs((double)f - (double)bf16_ref(hi));
    if ((u & 0xffff) == 0) return lo;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

}  // namespace

TEST(PeKernel, ScalarCodeAndPrintf)
{
    for (uint32_t workers : {1u, 3u}) {
        Env e(workers);
        uint64_t out = e.m.alloc(8 * 8 * 6);
        uint64_t dbg = e.m.alloc(4096);
        auto a = e.args("scalar_mix");
        a << out << 20u << 0.75;
        auto r = e.run("scalar_mix", a, 6, 0, dbg, 4096);
        ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        auto o = e.m.download<uint64_t>(out, 48);
        double y = 0.75;
        for (int i = 0; i < 20; i++) y = y * 1.5 - 0.25;
        for (uint32_t wg = 0; wg < 6; wg++) {
            EXPECT_EQ(o[wg * 8 + 0], 6765u);
            EXPECT_EQ((int64_t)o[wg * 8 + 1], -140 / 3);
            EXPECT_EQ((int64_t)o[wg * 8 + 2], -140 % 5);
            double got;
            memcpy(&got, &o[wg * 8 + 3], 8);
            EXPECT_EQ(got, y);
            EXPECT_EQ((int64_t)o[wg * 8 + 4], 750);
            EXPECT_EQ(o[wg * 8 + 5], wg * 1000 + wg % 4);
            EXPECT_EQ(std::string(reinterpret_cast<const char *>(&o[wg * 8 + 6]), 16),
                      std::string("-42|    7|beef|o"));
        }
        // one record per workgroup that printed, in workgroup order, 8-byte aligned;
        // wg 5 ran in the second wave, on PE 1 of the 2x2 grid
        auto recs = debug_records(e, dbg);
        ASSERT_EQ(recs.size(), 3u);
        EXPECT_EQ(recs[0], (DebugRec{0, 0, "hello from wg 0 n=20\n", 0}));
        EXPECT_EQ(recs[1], (DebugRec{1, 1, "hello from wg 1 n=20\n", 0}));
        EXPECT_EQ(recs[2], (DebugRec{5, 1, "hello from wg 5 n=20\n!", 0}));
        EXPECT_EQ(e.m.at<kiln_debug_header>(dbg)->dropped, 0u);
    }
}

TEST(PeKernel, DebugRecordsThatDoNotFitAreCounted)
{
    Env e;
    uint64_t out = e.m.alloc(8 * 8 * 6);
    // header + one record + 8 text bytes: wg 0 is cut short, wg 1 and 5 find no room
    const uint32_t size = 16 + 16 + 8;
    uint64_t dbg = e.m.alloc(4096);
    auto a = e.args("scalar_mix");
    a << out << 20u << 0.75;
    auto r = e.run("scalar_mix", a, 6, 0, dbg, size);
    ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
    auto recs = debug_records(e, dbg);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0], (DebugRec{0, 0, "hello fr", 21 - 8}));
    auto *h = e.m.at<kiln_debug_header>(dbg);
    EXPECT_EQ(h->used, 24u);
    EXPECT_EQ(h->dropped, (21u - 8) + 21 + 22);
    // the next launch appends after what is there: nothing more fits
    r = e.run("scalar_mix", a, 6, 0, dbg, size);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(debug_records(e, dbg).size(), 1u);
    EXPECT_EQ(h->dropped, (21u - 8) + 21 + 22 + (21 + 21 + 22));
}

TEST(PeKernel, SeOpsMatchCpu)
{
    Env e;
    const uint32_t n = 1000;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> U(-4.0f, 4.0f);
    std::vector<float> a(n), b(n), c(n);
    for (uint32_t i = 0; i < n; i++) {
        a[i] = U(rng);
        b[i] = U(rng);
        c[i] = U(rng);
    }
    a[0] = NAN;
    b[1] = NAN;
    a[2] = 0.0f;
    b[2] = -0.0f;
    b[3] = 0.0f;
    a[4] = INFINITY;
    uint64_t va = e.m.upload(a), vb = e.m.upload(b), vc = e.m.upload(c), vo = e.m.alloc(n * 4);
    const float s = 0.37f;
    auto gelu = [](float x) {
        return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    };
    auto fminr = [](float x, float y) {
        if (std::isnan(x)) return y;
        if (std::isnan(y)) return x;
        if (x == y) return std::signbit(x) ? x : y;
        return x < y ? x : y;
    };
    auto fmaxr = [](float x, float y) {
        if (std::isnan(x)) return y;
        if (std::isnan(y)) return x;
        if (x == y) return std::signbit(x) ? y : x;
        return x > y ? x : y;
    };
    for (uint32_t op = 0; op <= 22; op++) {
        auto args = e.args("se_test");
        args << op << va << vb << vc << vo << n << s;
        auto r = e.run("se_test", args);
        ASSERT_EQ(r.status, KILN_STATUS_OK) << op;
        auto o = e.m.download<float>(vo, n);
        for (uint32_t i = 0; i < n; i++) {
            float x = a[i], y = b[i], z = c[i], ref;
            bool exact = true;
            switch (op) {
            case 0: ref = x + y; break;
            case 1: ref = x - y; break;
            case 2: ref = x * y; break;
            case 3: ref = x / y; break;
            case 4: ref = fminr(x, y); break;
            case 5: ref = fmaxr(x, y); break;
            case 6: ref = std::fma(x, y, z); break;
            case 7: ref = x + s; break;
            case 8: ref = x * s; break;
            case 9: ref = std::exp(x); exact = false; break;
            case 10: ref = std::log(x); exact = false; break;
            case 11: ref = std::sqrt(x); break;
            case 12: ref = 1.0f / std::sqrt(x); exact = false; break;
            case 13: ref = x > 0 ? x : 0.0f; break;
            case 14: ref = gelu(x); exact = false; break;
            case 15: ref = 1.0f / (1.0f + std::exp(-x)); exact = false; break;
            case 16: ref = std::tanh(x); exact = false; break;
            case 17: ref = s; break;
            case 18: ref = std::fma(x, s, y); break;
            case 19: ref = -x; break;
            case 20: ref = std::fabs(x); break;
            case 21: ref = 1.0f / x; break;
            default: ref = x - s; break;
            }
            if (std::isnan(ref)) {
                EXPECT_TRUE(std::isnan(o[i])) << op << " " << i;
            } else if (exact || std::isinf(ref)) {
                EXPECT_EQ(o[i], ref) << "op " << op << " i " << i << " a " << x << " b " << y;
            } else {
                EXPECT_NEAR(o[i], ref, 1e-5f * std::max(1.0f, std::fabs(ref))) << op << " " << i;
            }
        }
    }
}

TEST(PeKernel, ConversionsRoundAndSaturate)
{
    Env e;
    std::vector<float> f = {1.0f, 1.00390625f /* bf16 tie, even down */, 1.01171875f /* tie up */,
                            -2.5f, 2.5f, 127.5f, 128.0f, -128.5f, -300.0f, NAN, INFINITY,
                            -INFINITY, 1e-40f, 65519.0f, 65520.0f, 1e5f, 5.96e-8f, 2.98e-8f,
                            3.0e9f, -3.0e9f, 0.5f, -0.5f, 1.5f, 3.4e38f};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> U(-1000.0f, 1000.0f);
    for (int i = 0; i < 200; i++) f.push_back(U(rng));
    const uint32_t n = f.size();
    uint64_t vf = e.m.upload(f), vo = e.m.alloc(n * 4);
    auto cvt = [&](uint64_t src, uint32_t st, uint32_t ss, uint32_t dt, uint32_t ds) {
        auto a = e.args("cvt_test");
        a << src << st << ss << vo << dt << ds << n;
        auto r = e.run("cvt_test", a);
        EXPECT_EQ(r.status, KILN_STATUS_OK);
    };
    cvt(vf, KILN_DTYPE_FP32, 4, KILN_DTYPE_BF16, 2);
    auto bf = e.m.download<uint16_t>(vo, n);
    for (uint32_t i = 0; i < n; i++) {
        if (std::isnan(f[i]))
            EXPECT_TRUE(std::isnan(bf16_ref(bf[i])));
        else
            EXPECT_EQ(bf[i], to_bf16_ref(f[i])) << f[i];
    }
    cvt(vf, KILN_DTYPE_FP32, 4, KILN_DTYPE_FP16, 2);
    auto hf = e.m.download<uint16_t>(vo, n);
    for (uint32_t i = 0; i < n; i++) {
        _Float16 h = (_Float16)f[i];
        uint16_t hb;
        memcpy(&hb, &h, 2);
        if (std::isnan(f[i]))
            EXPECT_EQ(hf[i] & 0x7e00, 0x7e00);
        else
            EXPECT_EQ(hf[i], hb) << f[i];
    }
    // fp16 -> fp32 round trip is exact
    uint64_t vh = e.m.upload(hf);
    cvt(vh, KILN_DTYPE_FP16, 2, KILN_DTYPE_FP32, 4);
    auto back = e.m.download<float>(vo, n);
    for (uint32_t i = 0; i < n; i++) {
        _Float16 h;
        memcpy(&h, &hf[i], 2);
        if (!std::isnan(f[i])) {
            EXPECT_EQ(back[i], (float)h);
        }
    }
    cvt(vf, KILN_DTYPE_FP32, 4, KILN_DTYPE_INT8, 1);
    auto i8 = e.m.download<int8_t>(vo, n);
    for (uint32_t i = 0; i < n; i++) {
        float r = std::nearbyint(f[i]);
        int ref = std::isnan(f[i]) ? 0 : r < -128 ? -128 : r > 127 ? 127 : (int)r;
        EXPECT_EQ(i8[i], ref) << f[i];
    }
    cvt(vf, KILN_DTYPE_FP32, 4, KILN_DTYPE_INT32, 4);
    auto i32 = e.m.download<int32_t>(vo, n);
    EXPECT_EQ(i32[3], -2);
    EXPECT_EQ(i32[4], 2);
    EXPECT_EQ(i32[9], 0);
    EXPECT_EQ(i32[18], INT32_MAX);
    EXPECT_EQ(i32[19], INT32_MIN);
    std::vector<int32_t> ints = {16777217, -16777219, 7, -128, 1000, -1000, INT32_MAX, INT32_MIN};
    uint64_t vi = e.m.upload(ints);
    auto a = e.args("cvt_test");
    a << vi << (uint32_t)KILN_DTYPE_INT32 << 4u << vo << (uint32_t)KILN_DTYPE_FP32 << 4u
      << (uint32_t)ints.size();
    ASSERT_EQ(e.run("cvt_test", a).status, KILN_STATUS_OK);
    auto fi = e.m.download<float>(vo, ints.size());
    for (size_t i = 0; i < ints.size(); i++) EXPECT_EQ(fi[i], (float)ints[i]);
    a = e.args("cvt_test");
    a << vi << (uint32_t)KILN_DTYPE_INT32 << 4u << vo << (uint32_t)KILN_DTYPE_INT8 << 1u
      << (uint32_t)ints.size();
    ASSERT_EQ(e.run("cvt_test", a).status, KILN_STATUS_OK);
    auto q = e.m.download<int8_t>(vo, ints.size());
    EXPECT_EQ(q[0], 127);
    EXPECT_EQ(q[1], -128);
    EXPECT_EQ(q[2], 7);
    EXPECT_EQ(q[3], -128);
}

TEST(PeKernel, DpeAllTypesAndTransposes)
{
    Env e;
    const uint32_t m = 37, n = 45, k = 29;
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> I(-100, 100);
    for (uint32_t dtype : {KILN_DTYPE_FP32, KILN_DTYPE_BF16, KILN_DTYPE_FP16, KILN_DTYPE_INT8}) {
        for (uint32_t flags = 0; flags < 4; flags++) {
            bool ta = flags & 1, tb = flags & 2;
            // logical A[m][k], B[k][n] with values exactly representable in every type
            std::vector<double> A(m * k), B(k * n);
            for (auto &v : A) v = dtype == KILN_DTYPE_INT8 ? I(rng) : I(rng) / 8.0;
            for (auto &v : B) v = dtype == KILN_DTYPE_INT8 ? I(rng) : I(rng) / 8.0;
            uint32_t es = dtype == KILN_DTYPE_FP32 ? 4 : dtype == KILN_DTYPE_INT8 ? 1 : 2;
            std::vector<uint8_t> sa(m * k * es), sb(k * n * es);
            auto store = [&](std::vector<uint8_t> &dst, size_t idx, double v) {
                if (dtype == KILN_DTYPE_FP32) {
                    float f = (float)v;
                    memcpy(&dst[idx * 4], &f, 4);
                } else if (dtype == KILN_DTYPE_INT8) {
                    dst[idx] = (uint8_t)(int8_t)v;
                } else if (dtype == KILN_DTYPE_BF16) {
                    uint16_t h = to_bf16_ref((float)v);
                    memcpy(&dst[idx * 2], &h, 2);
                } else {
                    _Float16 h = (_Float16)v;
                    memcpy(&dst[idx * 2], &h, 2);
                }
            };
            for (uint32_t i = 0; i < m; i++)
                for (uint32_t p = 0; p < k; p++) store(sa, ta ? p * m + i : i * k + p, A[i * k + p]);
            for (uint32_t p = 0; p < k; p++)
                for (uint32_t j = 0; j < n; j++) store(sb, tb ? j * k + p : p * n + j, B[p * n + j]);
            uint64_t va = e.m.upload(sa), vb = e.m.upload(sb), vc = e.m.alloc(m * n * 4);
            auto a = e.args("dpe_test");
            a << va << vb << vc << m << n << k << es << dtype << flags;
            auto r = e.run("dpe_test", a);
            ASSERT_EQ(r.status, KILN_STATUS_OK) << dtype << " " << flags;
            for (uint32_t i = 0; i < m; i++)
                for (uint32_t j = 0; j < n; j++) {
                    double ref = 0;
                    for (uint32_t p = 0; p < k; p++) ref += A[i * k + p] * B[p * n + j];
                    ref *= 2;
                    if (dtype == KILN_DTYPE_INT8)
                        ASSERT_EQ(e.m.at<int32_t>(vc)[i * n + j], (int32_t)ref);
                    else
                        ASSERT_NEAR(e.m.at<float>(vc)[i * n + j], ref, 1e-3) << dtype << flags;
                }
        }
    }
}

TEST(PeKernel, ReductionsAndTranspose)
{
    Env e;
    const uint32_t rows = 13, cols = 21;
    std::vector<float> x(rows * cols);
    for (uint32_t i = 0; i < x.size(); i++) x[i] = (float)((i * 37) % 101) - 50.0f;
    uint64_t vx = e.m.upload(x), vo = e.m.alloc(4096 * 4);
    auto a = e.args("re_mlu_test");
    a << vx << vo << rows << cols;
    ASSERT_EQ(e.run("re_mlu_test", a).status, KILN_STATUS_OK);
    const float *o = e.m.at<float>(vo);
    for (uint32_t r = 0; r < rows; r++) {
        float s = 0, mx = -INFINITY, ss = 0;
        for (uint32_t c = 0; c < cols; c++) {
            s += x[r * cols + c];
            mx = std::max(mx, x[r * cols + c]);
            ss += x[r * cols + c] * x[r * cols + c];
        }
        EXPECT_EQ(o[r], s);
        EXPECT_EQ(o[rows + cols + r], mx);
        EXPECT_EQ(o[2 * rows + 2 * cols + r], ss);
    }
    for (uint32_t c = 0; c < cols; c++) {
        float s = 0, mx = -INFINITY, mn = INFINITY;
        for (uint32_t r = 0; r < rows; r++) {
            s += x[r * cols + c];
            mx = std::max(mx, x[r * cols + c]);
            mn = std::min(mn, x[r * cols + c]);
        }
        EXPECT_EQ(o[rows + c], s);
        EXPECT_EQ(o[2 * rows + cols + c], mx);
        EXPECT_EQ(o[3 * rows + 2 * cols + c], mn);
    }
    const float *t = o + 3 * rows + 3 * cols;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++) EXPECT_EQ(t[c * rows + r], x[r * cols + c]);
    EXPECT_EQ(t[rows * cols], o[0]);   // rd of the first reduction
}

TEST(PeKernel, DmaStridedAndGather)
{
    Env e;
    const uint32_t rows = 10, cols = 7, sld = 11, dld = 9;
    std::vector<float> src(rows * sld);
    for (uint32_t i = 0; i < src.size(); i++) src[i] = (float)i;
    std::vector<int32_t> idx = {3, 0, 9, 3};
    uint64_t vs = e.m.upload(src), vi = e.m.upload(idx);
    uint64_t vd = e.m.alloc(rows * dld * 4), vg = e.m.alloc(idx.size() * cols * 4),
             vsum = e.m.alloc(cols * 4);
    auto a = e.args("dma_test");
    a << vs << vd << rows << cols << sld << dld << vi << (uint32_t)idx.size() << vg << vsum;
    auto r = e.run("dma_test", a);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    for (uint32_t i = 0; i < rows; i++)
        for (uint32_t c = 0; c < cols; c++)
            EXPECT_EQ(e.m.at<float>(vd)[i * dld + c], src[i * sld + c]);
    for (size_t j = 0; j < idx.size(); j++)
        for (uint32_t c = 0; c < cols; c++)
            EXPECT_EQ(e.m.at<float>(vg)[j * cols + c], src[idx[j] * sld + c]);
    for (uint32_t c = 0; c < cols; c++) {
        float s = 0;
        for (auto i : idx) s += src[i * sld + c];
        EXPECT_EQ(e.m.at<float>(vsum)[c], s);
    }
    EXPECT_GT(r.cycles, 300u);   // DMA latency is charged
}

// DRAM bandwidth is shared by the PEs that use it: idle workgroups cost
// nothing, and four PEs streaming at once need four times the fabric time.
TEST(PeKernel, CostModelChargesFabricContention)
{
    Env e(1, 8, 8);
    const uint32_t bytes = 256 * 1024;
    uint64_t src = e.m.alloc(bytes);
    auto cycles = [&](uint32_t grid, uint32_t active) {
        auto a = e.args("dma_stream");
        a << src << bytes << active;
        auto r = e.run("dma_stream", a, grid);
        EXPECT_EQ(r.status, KILN_STATUS_OK);
        return r.cycles;
    };
    const uint64_t one = cycles(1, 1);
    const uint64_t dram_cycles = (uint64_t)bytes * KILN_PE_CLOCK_HZ / KILN_COST_DRAM_BPS;
    EXPECT_GE(one, dram_cycles);
    EXPECT_EQ(cycles(64, 1), one);                  // 63 idle workgroups are free
    const uint64_t four = cycles(4, 4);
    EXPECT_GE(four, 4 * dram_cycles);               // bounded by the shared DRAM
    EXPECT_LT(four, 4 * one + 1000);
}

TEST(PeKernel, CooperativeBarrierIndependentOfWorkers)
{
    for (uint32_t workers : {1u, 2u, 4u}) {
        Env e(workers);
        uint64_t buf = e.m.alloc(64), out = e.m.alloc(64);
        auto a = e.args("barrier_test");
        a << buf << out;
        EXPECT_NE(e.kb.kernels.at("barrier_test").flags & KILN_META_KERNEL_COOPERATIVE, 0u);
        auto r = e.run("barrier_test", a, 4, KILN_LAUNCH_FLAG_COOPERATIVE);
        ASSERT_EQ(r.status, KILN_STATUS_OK);
        for (uint32_t wg = 0; wg < 4; wg++)
            EXPECT_EQ(e.m.at<uint32_t>(out)[wg], ((wg + 2) % 4 + 100) * 2) << workers;
    }
}

TEST(PeKernel, UnitFaults)
{
    Env e;
    auto fault = [&](uint32_t kind, uint32_t flags = 0, uint32_t wd = 0) {
        auto a = e.args("fault_test");
        a << kind << (uint64_t)0x7000000;
        memcpy(e.m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        return e.m.launch(kKbinVa + e.kb.kernels.at("fault_test").entry, kArgsVa, 1, 1, 1, flags,
                          0, wd);
    };
    auto r = fault(0);
    EXPECT_EQ(r.status, KILN_STATUS_KERNEL_TRAP);
    EXPECT_EQ(r.addr, 77u);
    EXPECT_EQ(fault(1).status, KILN_STATUS_LOCAL_MEM_BOUNDS);
    r = fault(2);
    EXPECT_EQ(r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(r.addr, 0x7000000u);
    EXPECT_EQ(r.access, (uint32_t)KILN_ACCESS_READ);
    EXPECT_EQ(fault(3).status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(fault(4).status, KILN_STATUS_ILLEGAL_INSTRUCTION);
    EXPECT_EQ(fault(4, KILN_LAUNCH_FLAG_COOPERATIVE).status, KILN_STATUS_OK);
    EXPECT_EQ(fault(5, 0, 2).status, KILN_STATUS_WATCHDOG);
    r = fault(6);
    EXPECT_EQ(r.status, KILN_STATUS_KERNEL_TRAP);
    EXPECT_EQ(r.addr, 1000u);
    EXPECT_EQ(fault(7).status, KILN_STATUS_OK);
}

// A TLB invalidation while a launch of the same context runs reaches the PEs'
// micro-TLBs: the kernel spins on a page that is remapped under it.
// A PTE rewritten during a launch is seen by the PE's loads and by its DMA,
// which both keep translations (the PE's TLB and its last DMA span).
TEST(PeKernel, RemapDuringLaunchIsSeen)
{
    for (const char *kernel : {"wait_flag", "wait_flag_dma"}) {
        Env e;
        const uint64_t flag_va = 0x5000000;
        uint64_t page_a = (e.m.alloc(3 * 4096) + 4095) & ~4095ull, page_b = page_a + 4096;
        *e.m.at<uint32_t>(page_a) = 0;
        *e.m.at<uint32_t>(page_b) = 7;
        e.m.map(flag_va, page_a, 4096, KILN_PTE_READ);  // identity-mapped data: PA = VA
        uint64_t out = e.m.alloc(4);
        auto a = e.args(kernel);
        a << flag_va << out;
        memcpy(e.m.dram.data() + kArgsVa, a.block.data(), a.block.size());
        KilnLaunchResult r{};
        std::thread t([&] {
            r = e.m.launch(kKbinVa + e.kb.kernels.at(kernel).entry, kArgsVa, 1, 1, 1, 0, 0,
                           20000);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        e.m.map(flag_va, page_b, 4096, KILN_PTE_READ);  // rewrites the PTE, invalidates ASID 1
        t.join();
        ASSERT_EQ(r.status, KILN_STATUS_OK) << kernel << ": the PE kept the stale translation";
        EXPECT_EQ(e.m.download<uint32_t>(out, 1)[0], 7u) << kernel;
    }
}

// RV64A across worker threads: 64 workgroups on 16 PEs and 4 workers add to
// the same words (amoadd.w, an lr.d/sc.d loop, amomaxu.w); no update is lost.
TEST(PeKernel, AtomicCounterAcrossWorkgroupsAndWorkers)
{
    for (uint32_t workers : {1u, 4u}) {
        Env e(workers, 4, 4);
        uint64_t c32 = e.m.alloc(4), c64 = e.m.alloc(8), mx = e.m.alloc(4);
        *e.m.at<uint32_t>(c32) = 0;
        *e.m.at<uint64_t>(c64) = 0;
        *e.m.at<uint32_t>(mx) = 0;
        const uint32_t iters = 2000;
        auto a = e.args("atomic_count");
        a << c32 << c64 << mx << iters;
        auto r = e.run("atomic_count", a, 64);
        ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        EXPECT_EQ(*e.m.at<uint32_t>(c32), 64u * iters) << workers << " workers";
        EXPECT_EQ(*e.m.at<uint64_t>(c64), 3ull * 64 * iters) << workers << " workers";
        EXPECT_EQ(*e.m.at<uint32_t>(mx), 63u);
    }
}

// The energy model's calibration (docs/pe-isa.md section 4): the benchmark's
// full-load bf16 GEMM on all 64 PEs, its DPEs busy from SRAM-streamed
// operands, draws the MTIA 2i TDP, 85 W; idle power is 20 W.
TEST(PeKernel, FullLoadBf16GemmDraws85W)
{
    Env e(2, 8, 8, KILN_TEST_KBIN_DIR "/bench.kbin");
    const uint32_t tile = 128 * 128 * 2, b_tiles = 4, tiles = 256;
    e.m.map(kSramVa, KILN_PA_SRAM_BASE, 1 << 20, KILN_PTE_READ | KILN_PTE_WRITE);
    uint64_t a = e.m.alloc(tile), c = e.m.alloc(64ull * 128 * 128 * 4);
    auto args = e.args("bench_gemm_bf16");
    args << a << (uint64_t)kSramVa << c << tiles << b_tiles;
    auto r = e.run("bench_gemm_bf16", args, 64);
    ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
    const double seconds = (double)r.cycles / KILN_PE_CLOCK_HZ;
    const double joules = (double)(kiln_energy_idle_pj(r.cycles) + r.dynamic_pj) * 1e-12;
    const double tflops = 2.0 * 64 * tiles * 128 * 128 * 128 / seconds / 1e12;
    EXPECT_GT(tflops, 0.95 * 176.9);   // the DPEs are busy
    EXPECT_NEAR(joules / seconds, KILN_POWER_TDP_MW / 1000.0, 0.2) << tflops << " TFLOPS, " << joules / seconds << " W";
    EXPECT_EQ(kiln_energy_idle_pj(KILN_PE_CLOCK_HZ) * 1e-12, KILN_POWER_IDLE_MW / 1000.0);
}
