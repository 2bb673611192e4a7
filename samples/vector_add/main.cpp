// SPDX-License-Identifier: MIT
// vector_add: the smallest complete libkiln program. Adds two vectors with a
// kernel written in C (vadd.c, compiled by kiln-cc into vadd.kbin) and checks the result.
#include <cstdio>
#include <kiln/kiln.hpp>
#include <vector>

// CMakeLists.txt passes the path kiln_add_kernel() builds vadd.kbin at; built by hand
// (kiln-cc vadd.c -o vadd.kbin), it is in the current directory.
#ifndef VADD_KBIN
#define VADD_KBIN "vadd.kbin"
#endif

int main() try {
  auto dev = kiln::Device::open(0);  // /dev/accel/accel0
  auto queue = dev.queue();
  auto vadd = dev.load_file(VADD_KBIN).kernel("vadd");  // checks the binary and its metadata

  const uint32_t n = 1 << 16;
  std::vector<float> a(n), b(n), c(n);
  for (uint32_t i = 0; i < n; i++) a[i] = float(i), b[i] = 2.0f * float(i);

  auto A = dev.alloc(n * sizeof(float)), B = dev.alloc(n * sizeof(float)), C = dev.alloc(n * sizeof(float));
  queue.upload(A, a);  // asynchronous; `a` may be reused at once (staged)
  queue.upload(B, b);
  // Arguments are checked against the kernel's metadata (count, kinds, sizes).
  auto done = queue.launch_with(vadd, {.grid = {dev.info().pe_count(), 1, 1}}, A, B, C, n);
  queue.download(c, C);  // lands in `c` when the queue completes
  queue.finish();        // throws kiln::Error with the fault if the kernel failed

  for (uint32_t i = 0; i < n; i++)
    if (c[i] != a[i] + b[i]) {
      std::fprintf(stderr, "mismatch at %u: %f != %f\n", i, c[i], a[i] + b[i]);
      return 1;
    }
  // Device time and energy are the chip model's (cycles at 1.35 GHz); the
  // emulator's own time is another matter.
  kiln::Usage u = done.usage();
  std::printf("vector_add: %u elements OK on %s (%ux%u PEs), kernel %.3f us device time (%llu cycles), %.3f uJ;"
              " emulator %.3f ms\n",
              n, dev.info().path.c_str(), dev.info().pe_grid_width, dev.info().pe_grid_height,
              double(u.device_time.count()) / 1e3, (unsigned long long)u.cycles, u.energy_j() * 1e6,
              double(u.emulator_time.count()) / 1e6);
  return 0;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "vector_add: %s\n", e.what());
  return 1;
}
