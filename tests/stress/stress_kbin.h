// SPDX-License-Identifier: MIT
// A minimal kbin loader (docs/pe-isa.md §5) for the stress tests, so that they
// drive the driver with raw ioctls and can also load deliberately broken images.
#pragma once

#include <elf.h>

#include <map>
#include <string>
#include <vector>

#include "kiln/hw/kiln_kbin.h"

namespace ks {

struct KbinImage {
  std::vector<uint8_t> image;                 // bytes to place at base B (relocations still relative)
  std::vector<std::pair<uint64_t, uint64_t>> relocs;  // (offset, addend): *(B + off) = B + addend
  std::map<std::string, uint64_t> entry;      // kernel name -> entry offset
  std::string error;

  // Image with relocations applied for base @base.
  std::vector<uint8_t> at(uint64_t base) const {
    std::vector<uint8_t> out = image;
    for (auto &[off, add] : relocs) {
      if (off + 8 > out.size()) continue;
      uint64_t v = base + add;
      memcpy(out.data() + off, &v, 8);
    }
    return out;
  }
};

inline KbinImage parse_kbin(const uint8_t *d, size_t n) {
  KbinImage k;
  auto fail = [&](const char *why) {
    k.error = why;
    return k;
  };
  if (n < sizeof(Elf64_Ehdr) || memcmp(d, ELFMAG, SELFMAG) != 0) return fail("not ELF");
  auto *eh = reinterpret_cast<const Elf64_Ehdr *>(d);
  if (eh->e_machine != KILN_KBIN_EM_RISCV) return fail("not RISC-V");
  if (eh->e_phoff + uint64_t(eh->e_phnum) * sizeof(Elf64_Phdr) > n) return fail("bad phdrs");
  if (eh->e_shoff + uint64_t(eh->e_shnum) * sizeof(Elf64_Shdr) > n) return fail("bad shdrs");
  auto *ph = reinterpret_cast<const Elf64_Phdr *>(d + eh->e_phoff);
  uint64_t end = 0;
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD) end = std::max<uint64_t>(end, ph[i].p_vaddr + ph[i].p_memsz);
  if (!end || end > (64u << 20)) return fail("bad load size");
  k.image.assign((end + 4095) & ~4095ull, 0);
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (ph[i].p_offset + ph[i].p_filesz > n || ph[i].p_filesz > ph[i].p_memsz) return fail("bad segment");
    memcpy(k.image.data() + ph[i].p_vaddr, d + ph[i].p_offset, ph[i].p_filesz);
  }
  auto *sh = reinterpret_cast<const Elf64_Shdr *>(d + eh->e_shoff);
  if (eh->e_shstrndx >= eh->e_shnum) return fail("no shstrtab");
  const char *shstr = reinterpret_cast<const char *>(d + sh[eh->e_shstrndx].sh_offset);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type == SHT_RELA) {
      auto *r = reinterpret_cast<const Elf64_Rela *>(d + sh[i].sh_offset);
      for (uint64_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Rela); j++) {
        if (ELF64_R_TYPE(r[j].r_info) != KILN_KBIN_R_RISCV_RELATIVE) return fail("bad relocation");
        k.relocs.push_back({r[j].r_offset, uint64_t(r[j].r_addend)});
      }
    }
    if (std::string(shstr + sh[i].sh_name) == KILN_META_SECTION) {
      const uint8_t *m = d + sh[i].sh_offset;
      auto *h = reinterpret_cast<const kiln_meta_header *>(m);
      if (h->magic != KILN_META_MAGIC) return fail("bad meta");
      for (uint32_t j = 0; j < h->kernel_count; j++) {
        auto *kk = reinterpret_cast<const kiln_meta_kernel *>(m + h->kernels_offset + j * h->kernel_size);
        k.entry[reinterpret_cast<const char *>(m + h->strings_offset + kk->name)] = kk->entry;
      }
    }
  }
  if (k.entry.empty()) return fail("no kernels");
  return k;
}

}  // namespace ks
