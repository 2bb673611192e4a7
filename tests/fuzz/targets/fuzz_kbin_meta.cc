// SPDX-License-Identifier: MIT
// libFuzzer target: the SDK's kernel signature metadata (.kiln.meta) and
// everything that consumes it: Device::load, Module::kernel, Kernel::arg_index
// and the argument block (Args), whose error messages print the signature.
//
// Input: the bytes of a .kiln.meta section. They are spliced into an
// otherwise valid kernel binary (tests/sdk/kbin_builder.hpp) so that every
// input reaches the metadata parser, and the binary is loaded on an
// in-process fake device. For every kernel the metadata describes, each
// argument is then set the way a program would, and set wrongly, checking
// that a wrong call is refused with Errc::invalid_argument naming the
// signature, and that correct calls are accepted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <kiln/device.hpp>
#include <kiln/module.hpp>

#include "../../sdk/kbin_builder.hpp"
#include "fake_driver.hpp"

namespace {

[[noreturn]] void fail(const std::string &what)
{
    fprintf(stderr, "fuzz_kbin_meta: %s\n", what.c_str());
    abort();
}

struct Template {
    std::vector<std::byte> image;
    size_t meta_shdr;   // file offset of the .kiln.meta section header
    Template()
    {
        kiln::test::KbinBuilder b;
        // 64 KiB loaded, so entries of real kernels (the seeds) lie inside it.
        b.bss = (64 << 10) - b.code.size();
        image = b.build();
        meta_shdr = b.shdr_off + 3 * sizeof(Elf64_Shdr);
    }
};

template <class F>
void expect_refused(const F &f, const kiln::Kernel &k, const char *what)
{
    try {
        f();
    } catch (const kiln::Error &e) {
        if (e.errc() != kiln::Errc::invalid_argument) fail(std::string(what) + ": wrong error code");
        if (std::string(e.what()).find(std::string(k.name())) == std::string::npos)
            fail(std::string(what) + ": message does not name the kernel: " + e.what());
        return;
    }
    fail(std::string(what) + " was accepted for kernel " + std::string(k.name()));
}

void exercise(const kiln::Module &m)
{
    for (const auto &info : m.kernels()) {
        kiln::Kernel k = m.kernel(info.name);
        if (&k.info() != &info) fail("Module::kernel found another kernel");
        kiln::Args args(k);
        if (args.block().size() != info.args_size) fail("argument block size");
        size_t n = k.args().size();
        expect_refused([&] { args.set_null(n); }, k, "index past the last argument");
        if (n) expect_refused([&] { args.validate(); }, k, "validate() with unset arguments");
        for (size_t i = 0; i < n; i++) {
            const auto &a = k.args()[i];
            if (k.arg_index(a.name) != i) fail("arg_index of " + a.name);
            std::vector<std::byte> bytes(a.size, std::byte{0x5a});
            if (a.kind == kiln::ArgKind::buffer) {
                expect_refused([&] { args.set_scalar(i, bytes); }, k, "scalar for a buffer argument");
                args.set_null(i);
            } else {
                expect_refused([&] { args.set_null(i); }, k, "null buffer for a scalar argument");
                bytes.push_back(std::byte{0});
                expect_refused([&] { args.set_scalar(i, bytes); }, k, "scalar of the wrong size");
                bytes.pop_back();
                args.set_scalar(i, bytes);
            }
        }
        args.validate();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const Template tpl;
    static kiln::Device dev = kiln::detail::HandleAccess::device(std::make_shared<kiln::detail::FakeDriver>());

    std::vector<std::byte> image = tpl.image;
    Elf64_Shdr sh;
    memcpy(&sh, image.data() + tpl.meta_shdr, sizeof sh);
    sh.sh_offset = image.size();
    sh.sh_size = size;
    memcpy(image.data() + tpl.meta_shdr, &sh, sizeof sh);
    image.insert(image.end(), reinterpret_cast<const std::byte *>(data),
                 reinterpret_cast<const std::byte *>(data) + size);

    std::optional<kiln::Module> m;
    try {
        m.emplace(dev.load(image, "fuzz.kbin"));
    } catch (const kiln::Error &e) {
        if (e.errc() != kiln::Errc::invalid_binary && e.errc() != kiln::Errc::binary_incompatible)
            fail(std::string("unexpected error: ") + e.what());
        return 0;
    }
    exercise(*m);
    return 0;
}
