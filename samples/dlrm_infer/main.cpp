// SPDX-License-Identifier: MIT
// dlrm_infer: a small DLRM-style recommendation model on the device, built
// from the op library (kiln::ops). Dense features go through a bottom MLP;
// sparse features are pooled from embedding tables (one embedding-bag over
// the tables stacked into one, as table-batched embeddings do); both are
// concatenated and a top MLP with a sigmoid head predicts a click-through
// rate. The model lives in on-chip SRAM (Library::alloc). Checked against
// the CPU.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <kiln/kiln.hpp>
#include <random>
#include <vector>

namespace {
constexpr uint32_t kBatch = 64, kDense = 8, kBottom = 16, kTables = 4, kRows = 1000, kDim = 16, kTop = 32;
constexpr uint32_t kConcat = kBottom + kTables * kDim;

std::vector<float> dense_ref(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                             uint32_t B, uint32_t I, uint32_t O, int act) {
  std::vector<float> y(size_t(B) * O);
  for (uint32_t r = 0; r < B; r++)
    for (uint32_t o = 0; o < O; o++) {
      float acc = b[o];
      for (uint32_t i = 0; i < I; i++) acc += x[r * I + i] * w[i * O + o];
      if (act == 1) acc = std::max(acc, 0.f);
      if (act == 2) acc = 1.f / (1.f + std::exp(-acc));
      y[r * O + o] = acc;
    }
  return y;
}
}  // namespace

int main() try {
  auto dev = kiln::Device::open(0);
  // Profiling costs no modelled time: it tells where the batch's cycles go.
  auto q = dev.queue({.profiling = true});
  kiln::ops::Library lib(dev);
  namespace ops = kiln::ops;

  // Model and a batch of requests (random, fixed seed).
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 0.3f);
  auto randv = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
  };
  auto tables = randv(size_t(kTables) * kRows * kDim);
  auto wb = randv(kDense * kBottom), bb = randv(kBottom);
  auto w1 = randv(kConcat * kTop), b1 = randv(kTop), w2 = randv(kTop), b2 = randv(1);
  auto xd = randv(kBatch * kDense);
  std::vector<uint32_t> offsets{0}, indices;
  std::uniform_int_distribution<uint32_t> row(0, kRows - 1), bag_len(1, 8);
  for (uint32_t i = 0; i < kBatch * kTables; i++) {
    for (uint32_t j = bag_len(rng); j > 0; j--) indices.push_back(row(rng));
    offsets.push_back(uint32_t(indices.size()));
  }
  // Bag (b, t) looks up table t, the rows [t * kRows, (t + 1) * kRows) of the stacked tables,
  // so one embedding-bag writes row b of E as the concatenation of the kTables pooled vectors.
  std::vector<uint32_t> stacked(indices.size());
  for (uint32_t bt = 0; bt < kBatch * kTables; bt++)
    for (uint32_t j = offsets[bt]; j < offsets[bt + 1]; j++) stacked[j] = indices[j] + (bt % kTables) * kRows;

  // Device buffers: weights stay resident; the request is uploaded. The top layer's
  // weights are split by input rows: the bottom MLP's part and the embeddings' part.
  auto up = [&](const auto& v) {
    auto b = lib.alloc(v.size() * sizeof(v[0]));
    q.upload(b, v);
    return b;
  };
  std::vector<float> w1_dense(w1.begin(), w1.begin() + kBottom * kTop), w1_emb(w1.begin() + kBottom * kTop, w1.end());
  auto T = up(tables), WB = up(wb), BB = up(bb), W1D = up(w1_dense), W1E = up(w1_emb), B1 = up(b1), W2 = up(w2),
       B2 = up(b2);
  auto XD = up(xd), IDX = up(stacked), OFF = up(offsets);
  auto Zd = lib.alloc(kBatch * kBottom * 4), E = lib.alloc(kBatch * kTables * kDim * 4);
  auto H = lib.alloc(kBatch * kTop * 4), P = lib.alloc(kBatch * 4);

  // One batch = one command list, one submission.
  kiln::CommandList batch(dev);
  lib.record(batch, lib.gemm(XD, WB, Zd, {.m = kBatch, .n = kBottom, .k = kDense, .epilogue = ops::Epilogue::relu},
                             &BB));
  lib.record(batch, lib.embedding_bag(T, uint64_t(kTables) * kRows, kDim, IDX, OFF, kBatch * kTables,
                                      ops::BagMode::sum, E));
  // H = relu([Zd E] W1 + b1) = relu(Zd W1[:16] + b1 + E W1[16:])
  lib.record(batch, lib.gemm(Zd, W1D, H, {.m = kBatch, .n = kTop, .k = kBottom}, &B1));
  lib.record(batch, lib.gemm(E, W1E, H,
                             {.m = kBatch, .n = kTop, .k = kTables * kDim, .accumulate = true,
                              .epilogue = ops::Epilogue::relu}));
  lib.record(batch, lib.gemm(H, W2, P, {.m = kBatch, .n = 1, .k = kTop, .epilogue = ops::Epilogue::sigmoid}, &B2));
  std::vector<float> ctr(kBatch);
  batch.read(std::as_writable_bytes(std::span(ctr)), P);

  auto t0 = std::chrono::steady_clock::now();
  auto done = q.submit(batch);
  done.wait();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // CPU reference.
  auto bottom = dense_ref(xd, wb, bb, kBatch, kDense, kBottom, 1);
  std::vector<float> z(size_t(kBatch) * kConcat, 0.f);
  for (uint32_t b = 0; b < kBatch; b++) {
    for (uint32_t i = 0; i < kBottom; i++) z[b * kConcat + i] = bottom[b * kBottom + i];
    for (uint32_t t = 0; t < kTables; t++)
      for (uint32_t j = offsets[b * kTables + t]; j < offsets[b * kTables + t + 1]; j++)
        for (uint32_t d = 0; d < kDim; d++)
          z[b * kConcat + kBottom + t * kDim + d] += tables[(size_t(t) * kRows + indices[j]) * kDim + d];
  }
  auto ref = dense_ref(dense_ref(z, w1, b1, kBatch, kConcat, kTop, 1), w2, b2, kBatch, kTop, 1, 2);
  double max_err = 0;
  for (uint32_t b = 0; b < kBatch; b++) max_err = std::max(max_err, double(std::fabs(ctr[b] - ref[b])));

  std::printf("dlrm_infer: batch %u, %u tables x %u rows x %u dims, %zu lookups, on %s\n", kBatch, kTables, kRows, kDim,
              indices.size(), dev.info().path.c_str());
  std::printf("  predicted CTR of the first requests:");
  for (uint32_t b = 0; b < 6; b++) std::printf(" %.3f", ctr[b]);
  // Device time and energy are the chip model's; wall time is the emulator's.
  kiln::Usage u = done.usage();
  kiln::LaunchProfile prof;
  for (const auto& p : done.profiles()) prof += p;
  std::printf("\n  %.2f ms wall for the batch (%zu commands, one submission); device %.1f us (%llu cycles),"
              " %.3f mJ = %.2f uJ per inference, %.1f W, %.3f TOPS/W; max |err| vs CPU %.2e -> %s\n",
              ms, batch.size(), double(u.device_time.count()) / 1e3, (unsigned long long)u.cycles,
              u.energy_j() * 1e3, u.energy_j() * 1e6 / kBatch, u.power_w(),
              u.energy_pj ? double(prof.flops()) / u.energy_j() * 1e-12 : 0.0, max_err, max_err < 1e-3 ? "OK" : "WRONG");
  std::printf("  the batch, %s", prof.report().c_str());
  return max_err < 1e-3 ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "dlrm_infer: %s\n", e.what());
  return 1;
}
