// SPDX-License-Identifier: MIT
// dlrm_infer: a small DLRM-style recommendation model on the device.
// Dense features go through a bottom MLP; sparse features are pooled from
// embedding tables (embedding-bag); both are concatenated and a top MLP with
// a sigmoid head predicts a click-through rate. Checked against the CPU.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <kiln/kiln.hpp>
#include <random>
#include <vector>

extern const unsigned char dlrm_kbin[];
extern const std::size_t dlrm_kbin_size;

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
  auto q = dev.queue();
  auto mod = dev.load(std::as_bytes(std::span(dlrm_kbin, dlrm_kbin_size)), "dlrm.kbin");
  auto bag = mod.kernel("embedding_bag"), dense = mod.kernel("dense");
  const kiln::Launch grid{.grid = {dev.info().pe_count(), 1, 1}};

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

  // Device buffers: weights stay resident; the request is uploaded.
  auto up = [&](const auto& v) {
    auto b = dev.alloc(v.size() * sizeof(v[0]));
    q.upload(b, v);
    return b;
  };
  auto T = up(tables), WB = up(wb), BB = up(bb), W1 = up(w1), B1 = up(b1), W2 = up(w2), B2 = up(b2);
  auto XD = up(xd), IDX = up(indices), OFF = up(offsets);
  auto Z = dev.alloc(kBatch * kConcat * 4), H = dev.alloc(kBatch * kTop * 4), P = dev.alloc(kBatch * 4);

  auto t0 = std::chrono::steady_clock::now();
  // bottom MLP writes columns [0, kBottom) of Z; embedding-bags fill the rest
  q.launch_with(dense, grid, XD, WB, BB, Z, kBatch, kDense, kBottom, 1u, kConcat);
  q.launch_with(bag, grid, T, IDX, OFF, Z, kBatch, kTables, kRows, kDim, kConcat, kBottom);
  q.launch_with(dense, grid, Z, W1, B1, H, kBatch, kConcat, kTop, 1u, kTop);
  auto done = q.launch_with(dense, grid, H, W2, B2, P, kBatch, kTop, 1u, 2u, 1u);
  std::vector<float> ctr(kBatch);
  q.download(ctr, P);
  q.finish();
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
  std::printf("\n  %.2f ms wall for the batch, head %.3f ms device time; max |err| vs CPU %.2e -> %s\n", ms,
              double(done.device_time().count()) / 1e6, max_err, max_err < 1e-3 ? "OK" : "WRONG");
  return max_err < 1e-3 ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "dlrm_infer: %s\n", e.what());
  return 1;
}
