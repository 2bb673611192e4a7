// SPDX-License-Identifier: MIT
// libFuzzer target: the SDK's kernel-binary parser and loader
// (userspace/libkiln/src/kbin.cpp), which reads whatever file a user hands to
// Device::load_file. The device never parses a kbin: it only sees the LAUNCH
// packets built from the parsed result (fuzz_packet, fuzz_pe).
//
// Input: a kbin file. parse_kbin must either throw kiln::Error (any other
// exception is a finding) or return an image whose every offset load_kbin may
// use lies inside the load buffer; the loader then copies and relocates into
// a buffer of exactly load_size bytes, so AddressSanitizer sees any write past it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <kiln/hw/kiln_packets.h>

#include "kbin.hpp"

namespace {

[[noreturn]] void fail(const char *what)
{
    fprintf(stderr, "fuzz_kbin: accepted binary: %s\n", what);
    abort();
}

// Loading is bounded by what a fuzzer should allocate per input; parse_kbin
// itself allows 256 MiB.
constexpr uint64_t kMaxLoad = 16ull << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace kiln;
    detail::KbinImage img;
    try {
        img = detail::parse_kbin({reinterpret_cast<const std::byte *>(data), size}, "fuzz.kbin");
    } catch (const Error &e) {
        if (e.errc() != Errc::invalid_binary && e.errc() != Errc::binary_incompatible) fail("unexpected error code");
        return 0;
    }
    if (img.load_size == 0 || img.load_size % 4096 || img.segments.empty()) fail("empty or unaligned load size");
    for (const auto &s : img.segments)
        if (s.vaddr > img.load_size || s.memsz > img.load_size - s.vaddr || s.data.size() > s.memsz)
            fail("segment outside the load size");
    for (const auto &r : img.relocs)
        if (r.offset % 8 || r.offset > img.load_size || img.load_size - r.offset < 8)
            fail("relocation outside the load size");
    if (img.kernels.empty()) fail("no kernels");
    for (const auto &k : img.kernels) {
        if (k.entry >= img.load_size || k.args_size > KILN_LAUNCH_MAX_ARGS_SIZE) fail("kernel entry or args size");
        for (const auto &a : k.args)
            if (a.offset > k.args_size || a.size > k.args_size - a.offset) fail("argument outside the args block");
    }
    if (img.load_size <= kMaxLoad) {
        std::vector<std::byte> dst(img.load_size);
        detail::load_kbin(img, dst, 0x10000);
    }
    return 0;
}
