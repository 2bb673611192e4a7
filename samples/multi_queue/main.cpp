// SPDX-License-Identifier: MIT
// multi_queue: overlap copies and compute on two queues. A copy queue
// uploads chunk i+1 while the compute queue processes chunk i; events order
// the two queues (compute waits for its upload, the next upload into a
// buffer waits for the compute that last read it). Double-buffered.
#include <chrono>
#include <cstdio>
#include <kiln/kiln.hpp>
#include <vector>

extern const unsigned char scale_kbin[];
extern const std::size_t scale_kbin_size;

int main() try {
  auto dev = kiln::Device::open(0);
  auto copy_q = dev.queue(), compute_q = dev.queue({.priority = kiln::Priority::high});
  auto mod = dev.load(std::as_bytes(std::span(scale_kbin, scale_kbin_size)), "scale.kbin");
  auto axpb = mod.kernel("axpb");

  constexpr uint32_t kChunks = 8, kN = 1 << 14;
  std::vector<std::vector<float>> in(kChunks, std::vector<float>(kN)), out(kChunks, std::vector<float>(kN));
  for (uint32_t c = 0; c < kChunks; c++)
    for (uint32_t i = 0; i < kN; i++) in[c][i] = float(c * kN + i);

  kiln::Buffer X[2] = {dev.alloc(kN * 4), dev.alloc(kN * 4)}, Y[2] = {dev.alloc(kN * 4), dev.alloc(kN * 4)};
  kiln::Event x_free[2], y_free[2];  // default events are already signalled
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t c = 0; c < kChunks; c++) {
    uint32_t s = c % 2;
    auto uploaded = copy_q.upload(X[s], in[c], 0, std::span(&x_free[s], 1));  // after the last compute read X[s]
    kiln::Event deps[] = {uploaded, y_free[s]};
    auto computed = compute_q.launch(
        axpb, {.grid = {dev.info().pe_count(), 1, 1}},
        kiln::Args(axpb).set("x", X[s]).set("y", Y[s]).set("a", 2.0f).set("b", 1.0f).set("n", kN), deps);
    x_free[s] = computed;
    y_free[s] = copy_q.download(out[c], Y[s], 0, std::span(&computed, 1));
  }
  copy_q.finish();
  compute_q.finish();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  for (uint32_t c = 0; c < kChunks; c++)
    for (uint32_t i = 0; i < kN; i++)
      if (out[c][i] != 2.0f * in[c][i] + 1.0f) {
        std::fprintf(stderr, "multi_queue: chunk %u element %u: %f\n", c, i, out[c][i]);
        return 1;
      }
  std::printf("multi_queue: %u chunks of %u floats through 2 queues (copy + compute), %.2f ms wall: OK\n", kChunks, kN,
              ms);
  return 0;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "multi_queue: %s\n", e.what());
  return 1;
}
