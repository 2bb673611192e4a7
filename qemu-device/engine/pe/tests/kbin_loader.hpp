// SPDX-License-Identifier: GPL-2.0-or-later
// A reference kbin loader for host tests (docs/pe-isa.md, "Kernel binary
// format"): copies PT_LOAD segments to a base VA, applies R_RISCV_RELATIVE
// relocations and reads .kiln.meta.
#pragma once

#include <cstdint>
#include <cstring>
#include <elf.h>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include "kiln/hw/kiln_kbin.h"
}

namespace kt {

struct KernelInfo {
    std::string name;
    uint64_t entry = 0;
    uint32_t args_size = 0, args_align = 0, local_mem = 0, flags = 0;
    std::vector<kiln_meta_arg> args;
    std::vector<std::string> arg_names;
};

struct Kbin {
    std::vector<uint8_t> image;     // relocated for base
    uint64_t base = 0;
    std::map<std::string, KernelInfo> kernels;
    kiln_note_target note{};
};

inline std::vector<uint8_t> read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

inline Kbin load_kbin(const std::string &path, uint64_t base)
{
    auto d = read_file(path);
    Kbin k;
    k.base = base;
    auto *eh = reinterpret_cast<const Elf64_Ehdr *>(d.data());
    if (d.size() < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_type != ET_DYN || eh->e_machine != KILN_KBIN_EM_RISCV)
        throw std::runtime_error("not a kbin: " + path);
    auto *ph = reinterpret_cast<const Elf64_Phdr *>(d.data() + eh->e_phoff);
    uint64_t size = 0;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD) size = std::max<uint64_t>(size, ph[i].p_vaddr + ph[i].p_memsz);
    k.image.assign((size + 4095) & ~4095ull, 0);
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD)
            memcpy(k.image.data() + ph[i].p_vaddr, d.data() + ph[i].p_offset, ph[i].p_filesz);
    auto *sh = reinterpret_cast<const Elf64_Shdr *>(d.data() + eh->e_shoff);
    const char *shstr = reinterpret_cast<const char *>(d.data() + sh[eh->e_shstrndx].sh_offset);
    for (int i = 0; i < eh->e_shnum; i++) {
        std::string name = shstr + sh[i].sh_name;
        if (sh[i].sh_type == SHT_RELA) {
            auto *r = reinterpret_cast<const Elf64_Rela *>(d.data() + sh[i].sh_offset);
            for (size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Rela); j++) {
                if (ELF64_R_TYPE(r[j].r_info) != KILN_KBIN_R_RISCV_RELATIVE)
                    throw std::runtime_error("unsupported relocation");
                uint64_t v = base + r[j].r_addend;
                memcpy(k.image.data() + r[j].r_offset, &v, 8);
            }
        } else if (name == KILN_NOTE_SECTION) {
            memcpy(&k.note, d.data() + sh[i].sh_offset + 12 + 8, sizeof(k.note));
        } else if (name == KILN_META_SECTION) {
            const uint8_t *m = d.data() + sh[i].sh_offset;
            kiln_meta_header h;
            memcpy(&h, m, sizeof(h));
            if (h.magic != KILN_META_MAGIC) throw std::runtime_error("bad meta");
            const char *strs = reinterpret_cast<const char *>(m + h.strings_offset);
            for (uint32_t ki = 0; ki < h.kernel_count; ki++) {
                kiln_meta_kernel mk;
                memcpy(&mk, m + h.kernels_offset + ki * h.kernel_size, sizeof(mk));
                KernelInfo info;
                info.name = strs + mk.name;
                info.entry = mk.entry;
                info.args_size = mk.args_size;
                info.args_align = mk.args_align;
                info.local_mem = mk.local_mem;
                info.flags = mk.flags;
                for (uint32_t a = mk.arg_first; a < mk.arg_first + mk.arg_count; a++) {
                    kiln_meta_arg ma;
                    memcpy(&ma, m + h.args_offset + a * h.arg_size, sizeof(ma));
                    info.args.push_back(ma);
                    info.arg_names.push_back(strs + ma.name);
                }
                k.kernels[info.name] = info;
            }
        }
    }
    return k;
}

// Packs launch arguments by the metadata: pointers / integers / floats in order.
struct Args {
    std::vector<uint8_t> block;
    const KernelInfo *k;
    size_t next = 0;
    explicit Args(const KernelInfo &ki) : block(ki.args_size), k(&ki) {}
    template <typename T> Args &operator<<(T v)
    {
        if (next >= k->args.size()) throw std::runtime_error("too many args for " + k->name);
        const auto &a = k->args[next++];
        if constexpr (std::is_floating_point_v<T>) {
            if (a.size == 4) {
                float f = (float)v;
                memcpy(block.data() + a.offset, &f, 4);
            } else {
                double dd = (double)v;
                memcpy(block.data() + a.offset, &dd, 8);
            }
        } else {
            uint64_t u = (uint64_t)v;
            memcpy(block.data() + a.offset, &u, a.size);
        }
        return *this;
    }
};

}  // namespace kt
