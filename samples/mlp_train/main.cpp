// SPDX-License-Identifier: MIT
// mlp_train: trains a 2-64-64-4 MLP on a synthetic 2-D classification set
// entirely on the Kiln device (forward, softmax cross-entropy, backward,
// SGD with momentum). One epoch is one recorded CommandList, replayed with a
// single submission per epoch. Exits non-zero unless the loss falls and the
// accuracy beats chance (25%) by a wide margin.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <kiln/kiln.hpp>
#include <numeric>
#include <random>
#include <vector>

extern const unsigned char mlp_kbin[];
extern const std::size_t mlp_kbin_size;

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
  size_t w, b;  // float offsets in the parameter buffer
};
}  // namespace

int main() try {
  auto dev = kiln::Device::open(0);
  auto q = dev.queue();
  auto mod = dev.load(std::as_bytes(std::span(mlp_kbin, mlp_kbin_size)), "mlp.kbin");
  auto fwd = mod.kernel("dense_fwd"), xent = mod.kernel("softmax_xent");
  auto bwd_data = mod.kernel("dense_bwd_data"), bwd_w = mod.kernel("dense_bwd_weight");
  auto sgd = mod.kernel("sgd_momentum");
  const kiln::Launch grid{.grid = {dev.info().pe_count(), 1, 1}};

  // Parameters, gradients and momentum each live in one buffer.
  std::vector<Layer> layers{{kIn, kHidden, 0, 0}, {kHidden, kHidden, 0, 0}, {kHidden, kClasses, 0, 0}};
  size_t nparams = 0;
  for (auto& l : layers) l.w = nparams, nparams += l.in * l.out, l.b = nparams, nparams += l.out;
  std::vector<float> params(nparams, 0.f);
  std::mt19937 rng(1);
  for (auto& l : layers) {
    std::normal_distribution<float> he(0, std::sqrt(2.0f / float(l.in)));
    for (uint32_t i = 0; i < l.in * l.out; i++) params[l.w + i] = he(rng);
  }
  std::vector<float> x(kBatch * kIn);
  std::vector<uint32_t> y(kBatch);
  make_data(x, y);

  auto f32 = [&](size_t n) { return dev.alloc(n * sizeof(float)); };
  auto P = f32(nparams), G = f32(nparams), V = f32(nparams);
  auto X = f32(kBatch * kIn), Y = dev.alloc(kBatch * 4);
  kiln::Buffer H[3] = {f32(kBatch * kHidden), f32(kBatch * kHidden), f32(kBatch * kClasses)};  // activations
  kiln::Buffer D[3] = {f32(kBatch * kHidden), f32(kBatch * kHidden), f32(kBatch * kClasses)};  // their gradients
  auto loss = f32(kBatch), correct = dev.alloc(kBatch * 4);
  q.upload(P, params);
  q.fill(V, 0);
  q.upload(X, x);
  q.upload(Y, y);

  // Record one training step.
  std::vector<float> host_loss(kBatch);
  std::vector<uint32_t> host_correct(kBatch);
  kiln::CommandList step(dev);
  const kiln::Buffer* in = &X;
  for (size_t l = 0; l < 3; l++) {
    kiln::Args a(fwd);
    a.set("X", *in).set("W", P, layers[l].w * 4).set("bias", P, layers[l].b * 4).set("Y", H[l]);
    a.set("B", kBatch).set("I", layers[l].in).set("O", layers[l].out).set("relu", uint32_t(l < 2));
    step.launch(fwd, grid, a);
    in = &H[l];
  }
  step.launch_with(xent, grid, H[2], Y, D[2], loss, correct, kBatch, kClasses);
  for (size_t l = 3; l-- > 0;) {
    const kiln::Buffer& layer_in = l ? H[l - 1] : X;
    kiln::Args w(bwd_w);
    w.set("X", layer_in).set("dY", D[l]).set("dW", G, layers[l].w * 4).set("db", G, layers[l].b * 4);
    w.set("B", kBatch).set("I", layers[l].in).set("O", layers[l].out);
    step.launch(bwd_w, grid, w);
    if (l > 0) {
      kiln::Args d(bwd_data);
      d.set("dY", D[l]).set("W", P, layers[l].w * 4).set("H", H[l - 1]).set("dX", D[l - 1]);
      d.set("B", kBatch).set("I", layers[l].in).set("O", layers[l].out);
      step.launch(bwd_data, grid, d);
    }
  }
  step.launch_with(sgd, grid, P, G, V, uint32_t(nparams), 0.05f, 0.9f);
  step.read(std::as_writable_bytes(std::span(host_loss)), loss);
  step.read(std::as_writable_bytes(std::span(host_correct)), correct);

  std::printf("mlp_train: %u samples, 2-%u-%u-%u MLP, %zu parameters, on %s (%ux%u PEs)\n", kBatch, kHidden, kHidden,
              kClasses, nparams, dev.info().path.c_str(), dev.info().pe_grid_width, dev.info().pe_grid_height);
  std::printf("  one epoch = %zu commands in one submission\n\n", step.size());
  std::printf("  epoch   loss     accuracy   device ms   cycles\n");
  auto t0 = std::chrono::steady_clock::now();
  double first = 0, last = 0, acc = 0;
  for (uint32_t epoch = 1; epoch <= kEpochs; epoch++) {
    auto done = q.submit(step);
    done.wait();
    last = std::accumulate(host_loss.begin(), host_loss.end(), 0.0) / kBatch;
    acc = 100.0 * std::accumulate(host_correct.begin(), host_correct.end(), 0u) / kBatch;
    if (epoch == 1) first = last;
    if (epoch == 1 || epoch % 5 == 0)
      std::printf("  %5u   %.4f   %6.1f %%   %9.3f   %llu\n", epoch, last, acc,
                  double(done.device_time().count()) / 1e6, (unsigned long long)done.cycles());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n  loss %.4f -> %.4f, final accuracy %.1f %% (chance 25 %%), %.1f s wall\n", first, last, acc, secs);
  bool ok = last < first * 0.7 && acc >= 75.0;
  std::printf("  %s\n", ok ? "PASS: the model learned the task on the device" : "FAIL: training did not converge");
  return ok ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "mlp_train: %s\n", e.what());
  return 1;
}
