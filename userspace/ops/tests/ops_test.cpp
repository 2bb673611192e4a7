// SPDX-License-Identifier: MIT
// Op-library kernels (build/userspace/ops/*.kbin) on the PE engine vs CPU references.
#include <gtest/gtest.h>

#include <cmath>

#include "ops_harness.hpp"

using namespace kt;

struct GemmCase {
    uint32_t m, n, k, flags;
};

class OpsGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(OpsGemm, AllTypesMatchCpu)
{
    auto c = GetParam();
    bool ta = c.flags & 1, tb = c.flags & 2, acc = c.flags & 4;
    uint32_t act = (c.flags >> 8) & 15;
    Ops o;
    auto A = randv(c.m * c.k, -1, 1, 1), B = randv(c.k * c.n, -1, 1, 2), bias = randv(c.n, -1, 1, 3);
    auto C0 = randv(c.m * c.n, -1, 1, 4);
    // each type through both kernels: direct, and staged through an SRAM workspace
    for (int variant = 0; variant < 8; variant++) {
        const char *ty = (const char *[]){"f32", "bf16", "f16", "i8"}[variant / 2];
        bool staged = variant & 1;
        std::string kname = std::string("kiln_gemm_") + ty + (staged ? "_staged" : "");
        bool is_i8 = ty[0] == 'i';
        // quantise inputs to the type, keep the exact values for the reference
        std::vector<double> Aq(A.size()), Bq(B.size());
        std::vector<uint8_t> sa, sb;
        uint32_t es = ty[0] == 'f' && ty[1] == '3' ? 4 : is_i8 ? 1 : 2;
        sa.resize(A.size() * es);
        sb.resize(B.size() * es);
        auto put = [&](std::vector<uint8_t> &dst, size_t idx, float v) -> double {
            if (es == 4) {
                memcpy(&dst[idx * 4], &v, 4);
                return v;
            }
            if (is_i8) {
                int8_t q = (int8_t)std::lround(v * 100);
                dst[idx] = (uint8_t)q;
                return q;
            }
            if (ty[0] == 'b') {
                uint16_t h = bf16(v);
                memcpy(&dst[idx * 2], &h, 2);
                return from_bf16(h);
            }
            _Float16 h = (_Float16)v;
            memcpy(&dst[idx * 2], &h, 2);
            return (double)(float)h;
        };
        for (uint32_t i = 0; i < c.m; i++)
            for (uint32_t p = 0; p < c.k; p++)
                Aq[i * c.k + p] = put(sa, ta ? p * c.m + i : i * c.k + p, A[i * c.k + p]);
        for (uint32_t p = 0; p < c.k; p++)
            for (uint32_t j = 0; j < c.n; j++)
                Bq[p * c.n + j] = put(sb, tb ? j * c.k + p : p * c.n + j, B[p * c.n + j]);
        // int8's bias is int32 and wraps: some entries near the ends of the range
        std::vector<int32_t> bias_i(c.n);
        for (uint32_t j = 0; j < c.n; j++)
            bias_i[j] = j % 7 == 3 ? INT32_MAX - (int32_t)j : (int32_t)std::lround(bias[j] * 1e5);
        uint64_t va = o.m.upload(sa), vb = o.m.upload(sb);
        uint64_t vbias = is_i8 ? o.m.upload(bias_i) : o.m.upload(bias);
        std::vector<int32_t> C0i(C0.size());
        for (size_t i = 0; i < C0.size(); i++) C0i[i] = (int32_t)std::lround(C0[i] * 1000);
        uint64_t vc = is_i8 ? o.m.upload(C0i) : o.m.upload(C0);
        auto a = o.args(kname);
        a << va << vb << vc << vbias << c.m << c.n << c.k << (ta ? c.m : c.k) << (tb ? c.k : c.n)
          << c.n << c.flags;
        if (staged) a << kSramVa;   // the workspace: a copy of A and B
        auto r = o.run(kname, a, staged ? 4 : 8);
        if (is_i8 && act > 1) {     // only relu is defined on int32 results
            EXPECT_EQ(r.status, KILN_STATUS_KERNEL_TRAP);
            continue;
        }
        ASSERT_EQ(r.status, KILN_STATUS_OK) << kname << " pc " << std::hex << r.pc;
        for (uint32_t i = 0; i < c.m; i++)
            for (uint32_t j = 0; j < c.n; j++) {
                double s = 0;
                for (uint32_t p = 0; p < c.k; p++) s += Aq[i * c.k + p] * Bq[p * c.n + j];
                if (is_i8) {
                    uint32_t u = (uint32_t)(int64_t)s + (acc ? (uint32_t)C0i[i * c.n + j] : 0) +
                                 (uint32_t)bias_i[j];
                    int32_t ref = act == 1 && (int32_t)u < 0 ? 0 : (int32_t)u;
                    ASSERT_EQ(o.m.at<int32_t>(vc)[i * c.n + j], ref) << i << "," << j;
                    continue;
                }
                if (acc) s += C0[i * c.n + j];
                s += bias[j];
                if (act == 1) s = s > 0 ? s : 0;
                if (act == 3) s = 1 / (1 + std::exp(-s));
                ASSERT_NEAR(o.m.at<float>(vc)[i * c.n + j], s, 1e-3 * (1 + std::fabs(s)))
                    << kname << " " << i << "," << j;
            }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, OpsGemm,
                         ::testing::Values(GemmCase{64, 64, 64, 0}, GemmCase{130, 70, 150, 0},
                                           GemmCase{200, 260, 100, 1}, GemmCase{33, 140, 77, 2},
                                           GemmCase{129, 129, 65, 3},
                                           GemmCase{100, 90, 80, 4 | (1 << 8)},
                                           GemmCase{50, 60, 70, 3 | (3 << 8)},
                                           // several rounds and k-panels in the staged kernel
                                           GemmCase{300, 290, 200, 1 << 8},
                                           GemmCase{270, 300, 330, 3 | (1 << 8)},
                                           GemmCase{260, 140, 90, 4}));

TEST(Ops, GemmIdenticalForAnyWorkerCount)
{
    std::vector<float> ref;
    for (uint32_t workers : {1u, 4u}) {
        Ops o(workers, 4, 4);
        const uint32_t M = 300, N = 260, K = 190;
        auto A = randv(M * K, -1, 1, 5), B = randv(K * N, -1, 1, 6);
        uint64_t va = o.m.upload(A), vb = o.m.upload(B), vc = o.m.alloc(M * N * 4);
        auto a = o.args("kiln_gemm_f32");
        a << va << vb << vc << 0 << M << N << K << K << N << N << (2u << 8);
        auto r = o.run("kiln_gemm_f32", a, 16);
        ASSERT_EQ(r.status, KILN_STATUS_OK);
        auto out = o.m.download<float>(vc, M * N);
        if (ref.empty())
            ref = out;
        else
            EXPECT_EQ(memcmp(ref.data(), out.data(), out.size() * 4), 0);
    }
}

TEST(Ops, EltwiseAndActivations)
{
    Ops o;
    const uint64_t n = 20000;
    auto A = randv(n, -3, 3, 7), B = randv(n, 0.5, 3, 8);
    A[0] = 0.0f;    // relu_grad's edge: neither zero is > 0
    A[1] = -0.0f;
    uint64_t va = o.m.upload(A), vb = o.m.upload(B), vo = o.m.alloc(n * 4);
    for (uint32_t op = 0; op <= 8; op++) {
        auto a = o.args("kiln_eltwise");
        a << op << va << vb << vo << n << 1.5f;
        ASSERT_EQ(o.run("kiln_eltwise", a).status, KILN_STATUS_OK);
        const float *r = o.m.at<float>(vo);
        for (uint64_t i = 0; i < n; i++) {
            float x = A[i], y = B[i], ref;
            switch (op) {
            case 0: ref = x + y; break;
            case 1: ref = x - y; break;
            case 2: ref = x * y; break;
            case 3: ref = x / y; break;
            case 4: ref = std::min(x, y); break;
            case 5: ref = std::max(x, y); break;
            case 6: ref = x + 1.5f; break;
            case 7: ref = x * 1.5f; break;
            default: ref = 1.5f; break;
            }
            ASSERT_EQ(r[i], ref) << op << " " << i;
        }
    }
    {   // relu_grad: out = a * [b > 0], here a = B, b = A (both signs)
        auto a = o.args("kiln_eltwise");
        a << 9u << vb << va << vo << n << 0.0f;
        ASSERT_EQ(o.run("kiln_eltwise", a).status, KILN_STATUS_OK);
        for (uint64_t i = 0; i < n; i++) ASSERT_EQ(o.m.at<float>(vo)[i], A[i] > 0 ? B[i] : 0.0f) << i;
    }
    for (uint32_t fn = 0; fn <= 10; fn++) {
        auto a = o.args("kiln_activation");
        a << fn << vb << vo << n;
        ASSERT_EQ(o.run("kiln_activation", a).status, KILN_STATUS_OK);
        const float *r = o.m.at<float>(vo);
        for (uint64_t i = 0; i < n; i += 7) {
            double x = B[i], ref;
            switch (fn) {
            case 0: ref = x; break;
            case 1: ref = 0.5 * x * (1 + std::tanh(0.7978845608 * (x + 0.044715 * x * x * x))); break;
            case 2: ref = 1 / (1 + std::exp(-x)); break;
            case 3: ref = std::tanh(x); break;
            case 4: ref = std::exp(x); break;
            case 5: ref = std::log(x); break;
            case 6: ref = std::sqrt(x); break;
            case 7: ref = 1 / std::sqrt(x); break;
            case 8: ref = -x; break;
            case 9: ref = std::fabs(x); break;
            default: ref = 1 / x; break;
            }
            ASSERT_NEAR(r[i], ref, 1e-5 * (1 + std::fabs(ref))) << fn;
        }
    }
    // conversion op: fp32 -> bf16
    auto a = o.args("kiln_convert");
    a << va << (uint32_t)KILN_DTYPE_FP32 << vo << (uint32_t)KILN_DTYPE_BF16 << n;
    ASSERT_EQ(o.run("kiln_convert", a).status, KILN_STATUS_OK);
    for (uint64_t i = 0; i < n; i++) ASSERT_EQ(o.m.at<uint16_t>(vo)[i], bf16(A[i]));
}

// Shapes of one row block, and of several blocks per workgroup (double buffering)
class OpsRows : public ::testing::TestWithParam<std::pair<uint32_t, uint32_t>> {};
INSTANTIATE_TEST_SUITE_P(Shapes, OpsRows,
                         ::testing::Values(std::make_pair(37u, 300u), std::make_pair(300u, 2000u)));

TEST_P(OpsRows, SoftmaxLayernormCrossEntropy)
{
    Ops o;
    const uint32_t rows = GetParam().first, cols = GetParam().second;
    auto X = randv(rows * cols, -5, 5, 9), G = randv(cols, 0.5, 1.5, 10), Bt = randv(cols, -1, 1, 11);
    uint64_t vx = o.m.upload(X), vy = o.m.alloc(rows * cols * 4), vg = o.m.upload(G),
             vbt = o.m.upload(Bt);
    auto a = o.args("kiln_softmax");
    a << vx << vy << rows << cols;
    ASSERT_EQ(o.run("kiln_softmax", a).status, KILN_STATUS_OK);
    for (uint32_t r = 0; r < rows; r++) {
        double mx = -1e30, s = 0;
        for (uint32_t c = 0; c < cols; c++) mx = std::max(mx, (double)X[r * cols + c]);
        for (uint32_t c = 0; c < cols; c++) s += std::exp(X[r * cols + c] - mx);
        for (uint32_t c = 0; c < cols; c++)
            ASSERT_NEAR(o.m.at<float>(vy)[r * cols + c], std::exp(X[r * cols + c] - mx) / s, 1e-6);
    }
    a = o.args("kiln_layernorm");
    a << vx << vg << vbt << vy << rows << cols << 1e-5f;
    ASSERT_EQ(o.run("kiln_layernorm", a).status, KILN_STATUS_OK);
    for (uint32_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (uint32_t c = 0; c < cols; c++) mean += X[r * cols + c];
        mean /= cols;
        for (uint32_t c = 0; c < cols; c++) var += (X[r * cols + c] - mean) * (X[r * cols + c] - mean);
        var /= cols;
        for (uint32_t c = 0; c < cols; c++) {
            double ref = (X[r * cols + c] - mean) / std::sqrt(var + 1e-5) * G[c] + Bt[c];
            ASSERT_NEAR(o.m.at<float>(vy)[r * cols + c], ref, 1e-4);
        }
    }
    std::vector<int32_t> labels(rows);
    for (uint32_t r = 0; r < rows; r++) labels[r] = (r * 7) % cols;
    uint64_t vl = o.m.upload(labels), vloss = o.m.alloc(rows * 4);
    a = o.args("kiln_cross_entropy");
    a << vx << vl << vloss << vy << rows << cols << (1.0f / rows);
    ASSERT_EQ(o.run("kiln_cross_entropy", a).status, KILN_STATUS_OK);
    for (uint32_t r = 0; r < rows; r++) {
        double mx = -1e30, s = 0;
        for (uint32_t c = 0; c < cols; c++) mx = std::max(mx, (double)X[r * cols + c]);
        for (uint32_t c = 0; c < cols; c++) s += std::exp(X[r * cols + c] - mx);
        double lref = -(X[r * cols + labels[r]] - mx - std::log(s));
        ASSERT_NEAR(o.m.at<float>(vloss)[r], lref, 1e-4);
        for (uint32_t c = 0; c < cols; c++) {
            double p = std::exp(X[r * cols + c] - mx) / s - ((int)c == labels[r] ? 1 : 0);
            ASSERT_NEAR(o.m.at<float>(vy)[r * cols + c], p / rows, 1e-6);
        }
    }
}

TEST(Ops, EmbeddingBagTransposeOptimizers)
{
    Ops o;
    const uint32_t rows = 500, dim = 64, bags = 20;
    auto T = randv(rows * dim, -1, 1, 12);
    std::vector<int32_t> idx, offs = {0};
    std::mt19937 rng(13);
    for (uint32_t b = 0; b < bags; b++) {
        uint32_t cnt = b % 5;   // includes empty bags
        for (uint32_t i = 0; i < cnt; i++) idx.push_back(rng() % rows);
        offs.push_back((int32_t)idx.size());
    }
    uint64_t vt = o.m.upload(T), vi = o.m.upload(idx), vo_ = o.m.upload(offs),
             vout = o.m.alloc(bags * dim * 4);
    for (uint32_t mode : {0u, 1u}) {
        auto a = o.args("kiln_embedding_bag");
        a << vt << (uint64_t)rows << dim << vi << vo_ << bags << mode << vout;
        ASSERT_EQ(o.run("kiln_embedding_bag", a).status, KILN_STATUS_OK);
        for (uint32_t b = 0; b < bags; b++)
            for (uint32_t d = 0; d < dim; d++) {
                double s = 0;
                for (int32_t i = offs[b]; i < offs[b + 1]; i++) s += T[idx[i] * dim + d];
                if (mode == 1 && offs[b + 1] > offs[b]) s /= offs[b + 1] - offs[b];
                ASSERT_NEAR(o.m.at<float>(vout)[b * dim + d], s, 1e-5);
            }
    }
    // one bag of more indices than a gather takes at once
    std::vector<int32_t> many(20000), moffs = {0, 20000};
    for (auto &x : many) x = rng() % rows;
    uint64_t vmany = o.m.upload(many), vmoffs = o.m.upload(moffs);
    {
        auto a = o.args("kiln_embedding_bag");
        a << vt << (uint64_t)rows << dim << vmany << vmoffs << 1u << 0u << vout;
        ASSERT_EQ(o.run("kiln_embedding_bag", a).status, KILN_STATUS_OK);
        for (uint32_t d = 0; d < dim; d++) {
            float sum = 0;  // fp32 in index order, as the gather accumulates
            for (int32_t i : many) sum += T[i * dim + d];
            ASSERT_FLOAT_EQ(o.m.at<float>(vout)[d], sum);
        }
    }
    // out-of-range index traps
    std::vector<int32_t> bad = {0, (int32_t)rows};
    std::vector<int32_t> boffs = {0, 2};
    uint64_t vbad = o.m.upload(bad), vboffs = o.m.upload(boffs);
    auto a = o.args("kiln_embedding_bag");
    a << vt << (uint64_t)rows << dim << vbad << vboffs << 1u << 0u << vout;
    EXPECT_EQ(o.run("kiln_embedding_bag", a).status, KILN_STATUS_KERNEL_TRAP);

    const uint32_t R = 600, C = 270;   // 15 tiles: several per workgroup
    auto X = randv(R * C, -1, 1, 14);
    uint64_t vx = o.m.upload(X), vy = o.m.alloc(R * C * 4);
    a = o.args("kiln_transpose");
    a << vx << vy << R << C;
    ASSERT_EQ(o.run("kiln_transpose", a).status, KILN_STATUS_OK);
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t c = 0; c < C; c++) ASSERT_EQ(o.m.at<float>(vy)[c * R + r], X[r * C + c]);

    const uint64_t n = 200000;   // 25 chunks: several per workgroup
    auto W = randv(n, -1, 1, 15), Gr = randv(n, -1, 1, 16), M = randv(n, -0.1f, 0.1f, 17),
         V = randv(n, 0, 0.1f, 18);
    uint64_t vw = o.m.upload(W), vg = o.m.upload(Gr), vm = o.m.upload(M), vv = o.m.upload(V);
    a = o.args("kiln_sgd");
    a << vw << vg << n << 0.1f << 0.01f;
    ASSERT_EQ(o.run("kiln_sgd", a).status, KILN_STATUS_OK);
    for (uint64_t i = 0; i < n; i++)
        ASSERT_NEAR(o.m.at<float>(vw)[i], W[i] - 0.1f * (Gr[i] + 0.01f * W[i]), 1e-6);
    auto W1 = o.m.download<float>(vw, n);
    {   // momentum: v = 0.9 v + (g + 0.01 w); w -= 0.1 v, on a copy of the state
        uint64_t vw2 = o.m.upload(W1), vv2 = o.m.upload(V);
        a = o.args("kiln_sgd_momentum");
        a << vw2 << vg << vv2 << n << 0.1f << 0.9f << 0.01f;
        ASSERT_EQ(o.run("kiln_sgd_momentum", a).status, KILN_STATUS_OK);
        for (uint64_t i = 0; i < n; i++) {
            double v1 = 0.9 * V[i] + (Gr[i] + 0.01 * W1[i]);
            ASSERT_NEAR(o.m.at<float>(vv2)[i], v1, 1e-6);
            ASSERT_NEAR(o.m.at<float>(vw2)[i], W1[i] - 0.1 * v1, 1e-6);
        }
    }
    a = o.args("kiln_adam");
    a << vw << vg << vm << vv << n << 0.001f << 0.9f << 0.999f << 1e-8f << 3u;
    ASSERT_EQ(o.run("kiln_adam", a).status, KILN_STATUS_OK);
    for (uint64_t i = 0; i < n; i++) {
        double m1 = 0.9 * M[i] + 0.1 * Gr[i], v1 = 0.999 * V[i] + 0.001 * Gr[i] * Gr[i];
        double mh = m1 / (1 - std::pow(0.9, 3)), vh = v1 / (1 - std::pow(0.999, 3));
        ASSERT_NEAR(o.m.at<float>(vm)[i], m1, 1e-6);
        ASSERT_NEAR(o.m.at<float>(vv)[i], v1, 1e-6);
        ASSERT_NEAR(o.m.at<float>(vw)[i], W1[i] - 0.001 * mh / (std::sqrt(vh) + 1e-8), 1e-5);
    }
}
