// SPDX-License-Identifier: MIT
// Builds synthetic kernel binaries (kbin) in memory for parser tests.
#pragma once

#include <elf.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_kbin.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace kiln::test {

struct ArgSpec {
  std::string name;
  uint8_t kind = KILN_ARG_BUFFER;
  uint8_t access = KILN_ARG_ACCESS_READ;
  uint8_t elem = KILN_ELEM_F32;
  uint32_t size = 8, align = 8, offset = 0;
};
struct KernelSpec {
  std::string name;
  uint64_t entry = 0;
  uint32_t args_size = 0, args_align = 8, local_mem = 0, flags = 0;
  std::vector<ArgSpec> args;
};

struct KbinBuilder {
  uint16_t machine = KILN_KBIN_EM_RISCV;
  uint8_t elf_class = ELFCLASS64;
  uint16_t type = ET_DYN;
  uint32_t isa_version = KILN_ISA_VERSION;
  uint32_t min_device = 1;
  uint64_t features = KILN_FEATURE_DMA | KILN_FEATURE_DPE;
  bool with_note = true, with_meta = true;
  uint32_t meta_magic = KILN_META_MAGIC;
  uint16_t meta_version = KILN_META_VERSION;
  std::vector<uint8_t> code = std::vector<uint8_t>(256, 0x13);  // "nop"s
  uint64_t bss = 64;
  std::vector<std::pair<uint64_t, int64_t>> relocs{{128, 16}};  // (offset, addend) R_RISCV_RELATIVE
  uint32_t reloc_type = KILN_KBIN_R_RISCV_RELATIVE;
  std::vector<KernelSpec> kernels{{"vadd",
                                   0,
                                   24,
                                   8,
                                   0,
                                   0,
                                   {{"a", KILN_ARG_BUFFER, KILN_ARG_ACCESS_READ, KILN_ELEM_F32, 8, 8, 0},
                                    {"b", KILN_ARG_BUFFER, KILN_ARG_ACCESS_WRITE, KILN_ELEM_F32, 8, 8, 8},
                                    {"n", KILN_ARG_SCALAR, 0, KILN_ELEM_U32, 4, 4, 16}}}};

  // Offsets in the last build() output, for targeted corruption.
  size_t meta_off = 0, meta_size = 0, note_off = 0, shdr_off = 0;

  std::vector<std::byte> meta() const {
    std::string strings(1, '\0');
    auto str = [&](const std::string& s) {
      uint32_t o = uint32_t(strings.size());
      strings += s;
      strings += '\0';
      return o;
    };
    std::vector<kiln_meta_kernel> ks;
    std::vector<kiln_meta_arg> as;
    for (const auto& k : kernels) {
      kiln_meta_kernel mk{};
      mk.name = str(k.name);
      mk.flags = k.flags;
      mk.entry = k.entry;
      mk.args_size = k.args_size;
      mk.args_align = k.args_align;
      mk.local_mem = k.local_mem;
      mk.arg_first = uint32_t(as.size());
      mk.arg_count = uint32_t(k.args.size());
      for (const auto& a : k.args) {
        kiln_meta_arg ma{};
        ma.name = str(a.name);
        ma.kind = a.kind, ma.access = a.access, ma.elem_type = a.elem;
        ma.size = a.size, ma.align = a.align, ma.offset = a.offset;
        as.push_back(ma);
      }
      ks.push_back(mk);
    }
    kiln_meta_header h{};
    h.magic = meta_magic;
    h.version = meta_version;
    h.header_size = sizeof h;
    h.kernel_count = uint32_t(ks.size());
    h.kernel_size = sizeof(kiln_meta_kernel);
    h.arg_count = uint32_t(as.size());
    h.arg_size = sizeof(kiln_meta_arg);
    h.kernels_offset = sizeof h;
    h.args_offset = uint32_t(h.kernels_offset + ks.size() * sizeof(kiln_meta_kernel));
    h.strings_offset = uint32_t(h.args_offset + as.size() * sizeof(kiln_meta_arg));
    h.strings_size = uint32_t(strings.size());
    std::vector<std::byte> out(h.strings_offset + strings.size());
    std::memcpy(out.data(), &h, sizeof h);
    if (!ks.empty()) std::memcpy(out.data() + h.kernels_offset, ks.data(), ks.size() * sizeof(kiln_meta_kernel));
    if (!as.empty()) std::memcpy(out.data() + h.args_offset, as.data(), as.size() * sizeof(kiln_meta_arg));
    std::memcpy(out.data() + h.strings_offset, strings.data(), strings.size());
    return out;
  }

  std::vector<std::byte> build() {
    std::vector<std::byte> f(256);
    auto append = [&](const void* p, size_t n, size_t align = 8) {
      while (f.size() % align) f.push_back(std::byte{0});
      size_t off = f.size();
      f.resize(off + n);
      if (n) std::memcpy(f.data() + off, p, n);
      return off;
    };
    size_t code_off = append(code.data(), code.size(), 16);
    // note
    std::vector<std::byte> note;
    {
      Elf64_Nhdr nh{5, sizeof(kiln_note_target), KILN_NOTE_TYPE_TARGET};
      kiln_note_target t{isa_version, min_device, features};
      note.resize(sizeof nh + 8 + sizeof t);
      std::memcpy(note.data(), &nh, sizeof nh);
      std::memcpy(note.data() + sizeof nh, "Kiln\0\0\0", 8);
      std::memcpy(note.data() + sizeof nh + 8, &t, sizeof t);
    }
    note_off = append(note.data(), note.size());
    auto m = meta();
    meta_off = append(m.data(), m.size());
    meta_size = m.size();
    std::vector<Elf64_Rela> rel;
    for (auto [o, a] : relocs) rel.push_back({o, ELF64_R_INFO(0, reloc_type), a});
    size_t rel_off = append(rel.data(), rel.size() * sizeof(Elf64_Rela));
    std::string shstr = std::string("\0.text\0.note.kiln\0.kiln.meta\0.rela.dyn\0.shstrtab\0", 50);
    size_t shstr_off = append(shstr.data(), shstr.size());
    std::vector<Elf64_Shdr> sh(6);
    sh[1] = {1, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0, code_off, code.size(), 0, 0, 16, 0};
    sh[2] = {7, SHT_NOTE, 0, 0, note_off, note.size(), 0, 0, 4, 0};
    sh[3] = {18, SHT_PROGBITS, 0, 0, meta_off, m.size(), 0, 0, 8, 0};
    sh[4] = {29, SHT_RELA, SHF_ALLOC, 0, rel_off, rel.size() * sizeof(Elf64_Rela), 0, 0, 8, sizeof(Elf64_Rela)};
    sh[5] = {39, SHT_STRTAB, 0, 0, shstr_off, shstr.size(), 0, 0, 1, 0};
    if (!with_note) sh[2].sh_name = 1;  // rename to ".text"
    if (!with_meta) sh[3].sh_name = 1;
    shdr_off = append(sh.data(), sh.size() * sizeof(Elf64_Shdr));

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = elf_class;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = type;
    eh.e_machine = machine;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof eh;
    eh.e_shoff = shdr_off;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 6;
    eh.e_shstrndx = 5;
    std::memcpy(f.data(), &eh, sizeof eh);
    Elf64_Phdr ph{PT_LOAD, PF_R | PF_X | PF_W, code_off, 0, 0, code.size(), code.size() + bss, 16};
    std::memcpy(f.data() + sizeof eh, &ph, sizeof ph);
    return f;
  }
};

}  // namespace kiln::test
