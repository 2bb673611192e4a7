// SPDX-License-Identifier: MIT
// mlp_train: trains a 2-64-64-4 MLP on a synthetic 2-D classification set
// entirely on the Kiln device with the op library (kiln::ops): GEMMs with a
// bias + ReLU epilogue forward, softmax cross-entropy, GEMMs with transposed
// operands backward, SGD with momentum. Every tensor is allocated with
// Library::alloc, i.e. in on-chip SRAM. One epoch is one recorded
// CommandList, replayed with a single submission per epoch. Exits non-zero
// unless the loss falls and the accuracy beats chance (25%) by a wide margin.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <kiln/kiln.hpp>
#include <numeric>
#include <random>
#include <vector>

namespace {
constexpr uint32_t kBatch = 512, kIn = 2, kHidden = 64, kClasses = 4, kEpochs = 40;

// Four classes: inner/outer ring x left/right half. Needs the hidden layers.
void make_data(std::vector<float>& x, std::vector<uint32_t>& y) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> angle(0, 6.2831853f), noise(-0.08f, 0.08f);
  for (uint32_t i = 0; i < kBatch; i++) {
    uint32_t c = i % kClasses;
    float r = (c & 1) ? 0.8f : 0.35f, a = angle(rng);
    float px = r * std::cos(a), py = r * std::sin(a);
    if ((c >> 1) != (px > 0)) px = -px;  // class bit 1: right half
    x[i * 2] = px + noise(rng), x[i * 2 + 1] = py + noise(rng);
    y[i] = c;
  }
}

struct Layer {
  uint32_t in, out;
  kiln::Buffer w, b, dw, db, vw, vb;  // weights, bias, their gradients and momentum
};
}  // namespace

int main() try {
  auto dev = kiln::Device::open(0);
  // Profiling costs no modelled time: it tells where an epoch's cycles go.
  auto q = dev.queue({.profiling = true});
  kiln::ops::Library lib(dev);
  namespace ops = kiln::ops;

  auto f32 = [&](size_t n) { return lib.alloc(n * sizeof(float)); };
  std::mt19937 rng(1);
  std::vector<Layer> layers;
  size_t nparams = 0;
  const std::pair<uint32_t, uint32_t> shapes[] = {{kIn, kHidden}, {kHidden, kHidden}, {kHidden, kClasses}};
  for (auto [in, out] : shapes) {
    Layer l{in, out, f32(in * out), f32(out), f32(in * out), f32(out), f32(in * out), f32(out)};
    std::normal_distribution<float> he(0, std::sqrt(2.0f / float(in)));
    std::vector<float> w(in * out);
    for (auto& x : w) x = he(rng);
    q.upload(l.w, w);
    for (auto* z : {&l.b, &l.vw, &l.vb}) q.fill(*z, 0u);
    nparams += in * out + out;
    layers.push_back(std::move(l));
  }
  std::vector<float> x(kBatch * kIn);
  std::vector<uint32_t> y(kBatch);
  make_data(x, y);
  auto X = f32(kBatch * kIn), Y = lib.alloc(kBatch * 4), ones = f32(kBatch);
  kiln::Buffer H[3] = {f32(kBatch * kHidden), f32(kBatch * kHidden), f32(kBatch * kClasses)};  // activations
  kiln::Buffer D[3] = {f32(kBatch * kHidden), f32(kBatch * kHidden), f32(kBatch * kClasses)};  // their gradients
  auto loss = f32(kBatch);
  q.upload(X, x);
  q.upload(Y, y);
  q.upload(ones, std::vector<float>(kBatch, 1.0f));

  // Record one training step.
  std::vector<float> host_loss(kBatch), host_logits(kBatch * kClasses);
  kiln::CommandList step(dev);
  const kiln::Buffer* in = &X;
  for (size_t l = 0; l < 3; l++) {
    auto& L = layers[l];
    lib.record(step, lib.gemm(*in, L.w, H[l],
                              {.m = kBatch, .n = L.out, .k = L.in,
                               .epilogue = l < 2 ? ops::Epilogue::relu : ops::Epilogue::none},
                              &L.b));
    in = &H[l];
  }
  // D[2] = (softmax(logits) - onehot) / batch
  lib.record(step, lib.cross_entropy(H[2], Y, loss, &D[2], kBatch, kClasses, 1.0f / kBatch));
  for (size_t l = 3; l-- > 0;) {
    auto& L = layers[l];
    const kiln::Buffer& layer_in = l ? H[l - 1] : X;
    // dW = X^T dY, db = 1^T dY (column sums as a 1 x batch GEMM)
    lib.record(step, lib.gemm(layer_in, D[l], L.dw, {.m = L.in, .n = L.out, .k = kBatch, .trans_a = true}));
    lib.record(step, lib.gemm(ones, D[l], L.db, {.m = 1, .n = L.out, .k = kBatch}));
    if (l > 0) {
      // dX = dY W^T, through the ReLU that produced the layer's input
      lib.record(step, lib.gemm(D[l], L.w, D[l - 1], {.m = kBatch, .n = L.in, .k = L.out, .trans_b = true}));
      lib.record(step, lib.eltwise(ops::Binary::relu_grad, D[l - 1], &H[l - 1], D[l - 1], kBatch * L.in));
    }
  }
  for (auto& L : layers) {
    lib.record(step, lib.sgd_momentum(L.w, L.dw, L.vw, L.in * L.out, 0.05f, 0.9f));
    lib.record(step, lib.sgd_momentum(L.b, L.db, L.vb, L.out, 0.05f, 0.9f));
  }
  step.read(std::as_writable_bytes(std::span(host_loss)), loss);
  step.read(std::as_writable_bytes(std::span(host_logits)), H[2]);

  std::printf("mlp_train: %u samples, 2-%u-%u-%u MLP, %zu parameters, on %s (%ux%u PEs)\n", kBatch, kHidden, kHidden,
              kClasses, nparams, dev.info().path.c_str(), dev.info().pe_grid_width, dev.info().pe_grid_height);
  std::printf("  one epoch = %zu commands in one submission, tensors in %s\n\n", step.size(),
              X.memory() == kiln::Memory::sram ? "SRAM" : "DRAM");
  std::printf("  epoch   loss     accuracy   device us   cycles      mJ      emulator ms\n");
  auto t0 = std::chrono::steady_clock::now();
  double first = 0, last = 0, acc = 0;
  kiln::Usage epoch_use;
  kiln::LaunchProfile epoch_prof;  // the last epoch's launches, summed
  for (uint32_t epoch = 1; epoch <= kEpochs; epoch++) {
    auto done = q.submit(step);
    done.wait();
    epoch_use = done.usage();
    epoch_prof = {};
    for (const auto& p : done.profiles()) epoch_prof += p;
    last = std::accumulate(host_loss.begin(), host_loss.end(), 0.0) / kBatch;
    uint32_t correct = 0;
    for (uint32_t i = 0; i < kBatch; i++) {
      const float* row = &host_logits[i * kClasses];
      correct += uint32_t(std::max_element(row, row + kClasses) - row) == y[i];
    }
    acc = 100.0 * correct / kBatch;
    if (epoch == 1) first = last;
    if (epoch == 1 || epoch % 5 == 0)
      std::printf("  %5u   %.4f   %6.1f %%   %9.1f   %-10llu  %6.3f  %9.1f\n", epoch, last, acc,
                  double(epoch_use.device_time.count()) / 1e3, (unsigned long long)epoch_use.cycles,
                  epoch_use.energy_j() * 1e3, double(epoch_use.emulator_time.count()) / 1e6);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Energy per epoch and efficiency, then where the epoch's modelled time went
  // (the profiler's view, docs/profiling.md).
  std::printf("\n  per epoch: %.3f mJ, %.1f W average, %.3f TOPS/W (%.2f MFLOP on the units)\n",
              epoch_use.energy_j() * 1e3, epoch_use.power_w(),
              epoch_use.energy_pj ? double(epoch_prof.flops()) / epoch_use.energy_j() * 1e-12 : 0.0,
              double(epoch_prof.flops()) * 1e-6);
  std::printf("  one epoch, %s", epoch_prof.report().c_str());
  std::printf("\n  loss %.4f -> %.4f, final accuracy %.1f %% (chance 25 %%), %.1f s wall\n", first, last, acc, secs);
  bool ok = last < first * 0.7 && acc >= 75.0;
  std::printf("  %s\n", ok ? "PASS: the model learned the task on the device" : "FAIL: training did not converge");
  return ok ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "mlp_train: %s\n", e.what());
  return 1;
}
