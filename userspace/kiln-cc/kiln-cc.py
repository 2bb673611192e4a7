#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kiln-cc: compile Kiln device kernels (C or C++) into kernel binaries.

  kiln-cc [options] kernel.c [more.c ...] -o kernel.kbin
  kiln-cc --disassemble kernel.kbin
  kiln-cc --info kernel.kbin
  kiln-cc --version

Kernels are functions marked KILN_KERNEL (include <kiln/device/kiln_device.h>).
The argument metadata (.kiln.meta) and the entry wrappers that unpack the
args block are generated from the kernel declarations; see docs/pe-isa.md.
"""

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

# Filled in by CMake: absolute in the build tree, relative to this script's directory when
# installed; run from the source tree, the fallbacks in paths() find them.
CONFIG = {
    "include_dir": "@KILN_CC_INCLUDE_DIR@",
    "rt_dir": "@KILN_CC_RT_DIR@",
    "version": "@PROJECT_VERSION@",
}

ISA_VERSION = 1
MIN_DEVICE_VERSION = 1
FEATURES_K1 = 0x1F          # all units except the barrier
FEATURE_BARRIER = 0x20
META_MAGIC = 0x4154454D
META_VERSION = 1

ELEM = {
    "none": 0, "i8": 1, "u8": 2, "i16": 3, "u16": 4, "i32": 5, "u32": 6,
    "i64": 7, "u64": 8, "f16": 9, "bf16": 10, "f32": 11, "f64": 12,
}

# desugared C type -> (size, elem)
SCALARS = {
    "char": (1, "i8"), "signed char": (1, "i8"), "unsigned char": (1, "u8"),
    "_Bool": (1, "u8"), "bool": (1, "u8"),
    "short": (2, "i16"), "unsigned short": (2, "u16"),
    "int": (4, "i32"), "unsigned int": (4, "u32"),
    "long": (8, "i64"), "unsigned long": (8, "u64"),
    "long long": (8, "i64"), "unsigned long long": (8, "u64"),
    "float": (4, "f32"), "double": (8, "f64"), "_Float16": (2, "f16"),
}

CUSTOM_NAMES = {
    (0, 0): "kiln.exit", (0, 1): "kiln.trap", (0, 2): "kiln.barrier",
    (0, 3): "kiln.putc", (0, 4): "kiln.puts",
    (1, 0): "kiln.dma.copy2d", (1, 1): "kiln.dma.gather", (1, 2): "kiln.dma.wait",
    (2, 0): "kiln.dpe.matmul",
    (4, 0): "kiln.re.sum_rows", (4, 1): "kiln.re.sum_cols", (4, 2): "kiln.re.max_rows",
    (4, 3): "kiln.re.max_cols", (4, 4): "kiln.re.min_rows", (4, 5): "kiln.re.min_cols",
    (4, 6): "kiln.re.sumsq_rows", (4, 7): "kiln.re.sumsq_cols",
    (5, 0): "kiln.mlu.transpose", (5, 1): "kiln.mlu.copy2d",
}
SE_NAMES = {
    0: "add", 1: "sub", 2: "mul", 3: "div", 4: "min", 5: "max", 6: "fma",
    0x20: "exp", 0x21: "log", 0x22: "sqrt", 0x23: "rsqrt", 0x24: "relu", 0x25: "gelu",
    0x26: "sigmoid", 0x27: "tanh", 0x28: "neg", 0x29: "abs", 0x2a: "recip",
    0x2b: "copy", 0x30: "fill", 0x38: "cvt",
}
CSR_NAMES = {
    0xcc0: "kiln_pe_id", 0xcc1: "kiln_wg_x", 0xcc2: "kiln_wg_y", 0xcc3: "kiln_wg_z",
    0xcc4: "kiln_grid_x", 0xcc5: "kiln_grid_y", 0xcc6: "kiln_grid_z",
    0xcc7: "kiln_num_pes", 0xcc8: "kiln_local_base", 0xcc9: "kiln_local_size",
    0xcca: "kiln_wg_id", 0xccb: "kiln_num_wg", 0xccc: "kiln_cycles",
    0x800: "kiln_debug_putc",
}
REGS = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
        "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
        "s10", "s11", "t3", "t4", "t5", "t6"]


class UsageError(Exception):
    pass


class CompileError(Exception):
    pass


def die(msg, code=1):
    sys.stderr.write("kiln-cc: error: %s\n" % msg)
    sys.exit(code)


def find_tool(names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    die("none of %s found (install clang, lld and llvm: scripts/setup.sh)" % ", ".join(names))


def paths():
    here = os.path.dirname(os.path.realpath(__file__))
    inc = os.path.join(here, CONFIG["include_dir"])
    rt = os.path.join(here, CONFIG["rt_dir"])
    # as configured, else the source tree (userspace/kiln-cc/kiln-cc.py)
    cands_inc = [inc, os.path.join(here, "..", "..", "include")]
    cands_rt = [rt, os.path.join(here, "..", "device-rt")]
    inc = next((p for p in cands_inc
                if os.path.exists(os.path.join(p, "kiln", "device", "kiln_device.h"))), None)
    rt = next((p for p in cands_rt if os.path.exists(os.path.join(p, "kiln_rt.c"))), None)
    if not inc or not rt:
        die("cannot find the Kiln device headers or runtime (include=%s rt=%s)" % (inc, rt))
    return os.path.realpath(inc), os.path.realpath(rt)


TARGET_FLAGS = ["--target=riscv64-unknown-elf", "-march=rv64imafd", "-mabi=lp64d",
                "-mcmodel=medany", "-mno-relax", "-fPIE", "-ffreestanding", "-nostdlib",
                "-fno-builtin", "-fvisibility=hidden", "-fno-exceptions",
                "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
                "-fno-stack-protector", "-fno-math-errno"]


def run(cmd, what):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise CompileError("%s failed (exit %d)" % (what, p.returncode))
    if p.stderr:
        sys.stderr.write(p.stderr)
    return p.stdout


# ---------------------------------------------------------------- AST parsing

NODE_RE = re.compile(r"^([| `]*)[|`]-(\w+)(.*)$")
TYPE_RE = re.compile(r"'([^']*)'(?::'([^']*)')?")


def parse_ast(text, src_files):
    """Find KILN_KERNEL function definitions in a clang -ast-dump text dump."""
    kernels = []
    ns_stack = []       # (depth, name)
    cur = None          # current candidate function
    cur_param = None
    # typedef name -> the type it stands for. clang's dump desugars a parameter's type
    # only at the top level: 'uint8_t *' comes without ':unsigned char *', so the
    # pointee of a pointer parameter is resolved through these.
    typedefs = {}
    for line in text.splitlines():
        m = NODE_RE.match(line)
        if not m:
            if line.startswith("TranslationUnitDecl"):
                continue
            continue
        depth = (len(m.group(1)) + 2) // 2
        kind, rest = m.group(2), m.group(3)
        if kind in ("TypedefDecl", "TypeAliasDecl"):
            tname, ttype = parm_name_type(rest)
            if tname and ttype[0]:
                typedefs[tname] = ttype[1] or ttype[0]
        while ns_stack and ns_stack[-1][0] >= depth:
            ns_stack.pop()
        if cur and depth <= cur["depth"]:
            if cur["is_kernel"] and cur["has_body"]:
                kernels.append(cur)
            cur = None
            cur_param = None
        if kind == "NamespaceDecl":
            nm = rest.strip().split()[-1] if rest.strip() else ""
            ns_stack.append((depth, nm))
            continue
        if kind == "LinkageSpecDecl":
            continue
        if kind == "FunctionDecl" and cur is None:
            name, types = fn_name_type(rest)
            if name is None:
                continue
            ns = "::".join(n for _, n in ns_stack if n)
            cur = {"depth": depth, "name": name, "qual": (ns + "::" + name) if ns else name,
                   "params": [], "is_kernel": False, "has_body": False,
                   "cooperative": False, "local_mem": 0}
            continue
        if cur is None:
            continue
        if depth == cur["depth"] + 1:
            cur_param = None
            if kind == "ParmVarDecl":
                pname, t = parm_name_type(rest)
                if pname is None:
                    raise CompileError("kernel parameters must be named (in %s)" % cur["name"])
                cur_param = {"name": pname, "type": t[0], "canon": t[1] or t[0],
                             "annot": []}
                cur["params"].append(cur_param)
            elif kind == "CompoundStmt":
                cur["has_body"] = True
            elif kind == "AnnotateAttr":
                a = annot(rest)
                if a == "kiln_kernel":
                    cur["is_kernel"] = True
                elif a == "kiln_cooperative":
                    cur["cooperative"] = True
                elif a and a.startswith("kiln_local_mem="):
                    cur["local_mem"] = int(a.split("=", 1)[1], 0)
        elif depth == cur["depth"] + 2 and cur_param is not None and kind == "AnnotateAttr":
            cur_param["annot"].append(annot(rest))
    if cur and cur["is_kernel"] and cur["has_body"]:
        kernels.append(cur)
    for k in kernels:
        k["typedefs"] = typedefs
    # A function may appear twice (declaration + definition): keep definitions once
    seen, out = set(), []
    for k in kernels:
        if k["qual"] not in seen:
            seen.add(k["qual"])
            out.append(k)
    return out


def annot(rest):
    m = re.search(r'"((?:[^"\\]|\\.)*)"', rest)
    return m.group(1) if m else None


def strip_loc(rest):
    # drop " 0x1234 " and the "<...>" source range (may nest <<built-in>>)
    rest = re.sub(r"^\s*0x[0-9a-f]+\s*", "", rest)
    rest = re.sub(r"^(prev|parent) 0x[0-9a-f]+\s*", "", rest)
    if rest.startswith("<"):
        depth = 0
        for i, ch in enumerate(rest):
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
                if depth == 0:
                    rest = rest[i + 1:]
                    break
    rest = rest.strip()
    # location token (col:5, line:3:5, file.c:3:5)
    if rest and not rest.startswith("'"):
        tok = rest.split(" ", 1)
        if re.match(r"^(col:\d+|line:\d+:\d+|\S+:\d+:\d+|<invalid sloc>)$", tok[0]):
            rest = tok[1] if len(tok) > 1 else ""
    return rest.strip()


def fn_name_type(rest):
    rest = strip_loc(rest)
    words = rest.split("'", 1)
    if len(words) < 2:
        return None, None
    names = [w for w in words[0].split() if w not in ("used", "referenced", "implicit",
                                                      "invalid", "constexpr", "inline")]
    if not names:
        return None, None
    return names[-1], None


def parm_name_type(rest):
    rest = strip_loc(rest)
    head, _, tail = rest.partition("'")
    names = [w for w in head.split() if w not in ("used", "referenced", "cinit")]
    m = TYPE_RE.search("'" + tail)
    t = (m.group(1), m.group(2)) if m else ("", None)
    return (names[-1] if names else None), t


def resolve_typedef(name, typedefs):
    """The builtin type a typedef chain (uint8_t -> __uint8_t -> unsigned char) ends in."""
    seen = set()
    while name in typedefs and name not in seen:
        seen.add(name)
        name = re.sub(r"\b(const|volatile)\b", "", typedefs[name]).strip()
    return name


def classify(k):
    """Lay out a kernel's args block from its parameters."""
    args, off, max_align = [], 0, 8
    for p in k["params"]:
        t, canon = p["type"].strip(), p["canon"].strip()
        ann = [a for a in p["annot"] if a]
        if canon.endswith("*") or t.endswith("*"):
            pointee = canon[:-1].strip()
            sugared = t[:-1].strip()
            const = bool(re.search(r"\bconst\b", pointee))
            base = re.sub(r"\b(const|volatile|restrict|__restrict)\b", "", pointee).strip()
            sbase = re.sub(r"\b(const|volatile|restrict|__restrict)\b", "", sugared).strip()
            if "kiln_bf16_t" in sbase:
                elem = "bf16"
            elif "kiln_fp16_t" in sbase:
                elem = "f16"
            else:
                elem = SCALARS.get(resolve_typedef(base, k["typedefs"]), (0, "none"))[1]
            if "kiln_out" in ann:
                access = 2
            elif "kiln_in" in ann:
                access = 1
            elif "kiln_inout" in ann:
                access = 3
            else:
                access = 1 if const else 3
            kind, size, align = 0, 8, 8
        else:
            base = re.sub(r"\b(const|volatile)\b", "", canon).strip()
            if base.startswith("enum "):
                size, elem = 4, "i32"
            elif base in SCALARS:
                size, elem = SCALARS[base]
            else:
                raise CompileError(
                    "kernel %s: parameter '%s' has unsupported type '%s' "
                    "(use pointers, integers, float or double)" % (k["name"], p["name"], t))
            sbase = re.sub(r"\b(const|volatile)\b", "", t).strip()
            if sbase == "kiln_bf16_t":
                elem = "bf16"
            elif sbase == "kiln_fp16_t":
                elem = "f16"
            kind, align, access = 1, size, 0
        off = (off + align - 1) // align * align
        args.append({"name": p["name"], "kind": kind, "access": access, "elem": ELEM[elem],
                     "size": size, "align": align, "offset": off, "ctype": t})
        off += size
        max_align = max(max_align, align)
    k["args"] = args
    k["args_align"] = max_align
    k["args_size"] = (off + max_align - 1) // max_align * max_align


# ---------------------------------------------------------------- generation

def gen_wrappers(kernels, src, cxx):
    out = ['#include "%s"' % src, "#include <kiln/device/kiln_device.h>", ""]
    for k in kernels:
        ent = "__kiln_entry_" + k["qual"].replace("::", "__")
        k["entry_sym"] = ent
        calls = []
        for a in k["args"]:
            calls.append("*(%s const *)(__kiln_args + %d)" % (a["ctype"], a["offset"]))
        ext = 'extern "C" ' if cxx else ""
        out.append("%s__attribute__((used, noinline, visibility(\"hidden\"))) void %s("
                   "const unsigned char *__kiln_args)" % (ext, ent))
        out.append("{")
        out.append("    (void)__kiln_args;")
        out.append("    %s(%s);" % (k["qual"], ", ".join(calls)))
        out.append("    kiln_exit();")
        out.append("}")
        out.append("")
    return "\n".join(out)


def gen_meta_asm(kernels, uses_barrier):
    strings = bytearray(b"\0")
    stroff = {}

    def s(x):
        if x not in stroff:
            stroff[x] = len(strings)
            strings.extend(x.encode() + b"\0")
        return stroff[x]

    hdr_size, ker_size, arg_size = 40, 40, 20
    nargs = sum(len(k["args"]) for k in kernels)
    kernels_off = hdr_size
    args_off = kernels_off + ker_size * len(kernels)
    for k in kernels:
        s(k["qual"])
        for a in k["args"]:
            s(a["name"])
    strings_off = args_off + arg_size * nargs
    lines = ['\t.section .kiln.meta,"",@progbits', "\t.p2align 3",
             "\t.word 0x%x" % META_MAGIC,
             "\t.half %d, %d" % (META_VERSION, hdr_size),
             "\t.word %d, %d, %d, %d" % (len(kernels), ker_size, nargs, arg_size),
             "\t.word %d, %d, %d, %d" % (kernels_off, args_off, strings_off, len(strings))]
    first = 0
    for k in kernels:
        flags = 1 if k["cooperative"] else 0
        lines.append("\t.word %d, %d" % (s(k["qual"]), flags))
        lines.append("\t.quad %s" % k["entry_sym"])
        lines.append("\t.word %d, %d, %d, %d, %d, 0" % (
            k["args_size"], k["args_align"], k["local_mem"], first, len(k["args"])))
        first += len(k["args"])
    for k in kernels:
        for a in k["args"]:
            lines.append("\t.word %d" % s(a["name"]))
            lines.append("\t.byte %d, %d, %d, 0" % (a["kind"], a["access"], a["elem"]))
            lines.append("\t.word %d, %d, %d" % (a["size"], a["align"], a["offset"]))
    lines.append("\t.byte " + ", ".join(str(b) for b in strings))
    feats = FEATURES_K1 | (FEATURE_BARRIER if uses_barrier else 0)
    lines += ['\t.section .note.kiln,"a",@note', "\t.p2align 2",
              "\t.word 5, 16, 1", '\t.asciz "Kiln"', "\t.p2align 2",
              "\t.word %d, %d" % (ISA_VERSION, MIN_DEVICE_VERSION),
              "\t.quad 0x%x" % feats, ""]
    return "\n".join(lines)


LINKER_SCRIPT = """/* Kiln kernel binary layout: position independent, linked at 0 */
SECTIONS
{
  . = 0;
  .text : { *(.text.__kiln_entry*) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.* .srodata .srodata.*) }
  .note.kiln : { KEEP(*(.note.kiln)) }
  . = ALIGN(4096);
  .data : { *(.data .data.* .sdata .sdata.*) }
  .bss : { *(.bss .bss.* .sbss .sbss.* COMMON) }
  /DISCARD/ : { *(.comment) *(.note.GNU-stack) *(.eh_frame) }
}
"""


# ---------------------------------------------------------------- ELF reading

def elf_sections(data):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CompileError("not an ELF64 little-endian file")
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = []
    for i in range(e_shnum):
        o = e_shoff + i * e_shentsize
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, o)
        secs.append([name, typ, flags, addr, off, size])
    stro = secs[e_shstrndx][4]
    out = {}
    for sct in secs:
        n = data[stro + sct[0]:data.index(b"\0", stro + sct[0])].decode()
        out[n] = sct
    return out


def read_meta(data):
    secs = elf_sections(data)
    if ".kiln.meta" not in secs:
        raise CompileError("no .kiln.meta section")
    _, _, _, _, off, size = secs[".kiln.meta"]
    m = data[off:off + size]
    (magic, ver, hsz, nk, ksz, na, asz, koff, aoff, soff, ssz) = struct.unpack_from(
        "<IHHIIIIIIII", m, 0)
    if magic != META_MAGIC:
        raise CompileError("bad .kiln.meta magic")
    strs = m[soff:soff + ssz]

    def st(o):
        return strs[o:strs.index(b"\0", o)].decode()

    kernels = []
    for i in range(nk):
        name, flags, entry, asize, aalign, lmem, afirst, acount, _ = struct.unpack_from(
            "<IIQIIIIII", m, koff + i * ksz)
        args = []
        for j in range(afirst, afirst + acount):
            an, kind, acc, elem, _, sz, al, ao = struct.unpack_from(
                "<IBBBBIII", m, aoff + j * asz)
            args.append(dict(name=st(an), kind=kind, access=acc, elem=elem, size=sz,
                             align=al, offset=ao))
        kernels.append(dict(name=st(name), flags=flags, entry=entry, args_size=asize,
                            args_align=aalign, local_mem=lmem, args=args))
    note = None
    if ".note.kiln" in secs:
        o = secs[".note.kiln"][4]
        namesz, descsz, typ = struct.unpack_from("<III", data, o)
        isa, mindev, feats = struct.unpack_from("<IIQ", data, o + 12 + 8)
        note = dict(type=typ, isa=isa, min_device=mindev, features=feats)
    return kernels, note


# ---------------------------------------------------------------- commands

def cmd_info(path):
    data = open(path, "rb").read()
    kernels, note = read_meta(data)
    enames = {v: k for k, v in ELEM.items()}
    if note:
        print("target: isa %d, min device %d, features 0x%x" % (
            note["isa"], note["min_device"], note["features"]))
    for k in kernels:
        print("kernel %s entry=0x%x args_size=%d args_align=%d local_mem=%d%s" % (
            k["name"], k["entry"], k["args_size"], k["args_align"], k["local_mem"],
            " cooperative" if k["flags"] & 1 else ""))
        for a in k["args"]:
            print("  %-16s %-6s %-3s %-5s size=%d align=%d offset=%d" % (
                a["name"], "buffer" if a["kind"] == 0 else "scalar",
                {0: "-", 1: "r", 2: "w", 3: "rw"}[a["access"]], enames.get(a["elem"], "?"),
                a["size"], a["align"], a["offset"]))
    return 0


def decode_custom(w):
    f3, f7 = (w >> 12) & 7, w >> 25
    rd, rs1, rs2 = (w >> 7) & 31, (w >> 15) & 31, (w >> 20) & 31
    if f3 == 3:
        base = f7 & ~0x10 if f7 <= 0x16 else f7
        name = "kiln.se." + SE_NAMES.get(base, "op%d" % f7) + (".s" if f7 <= 0x16 and f7 & 0x10 else "")
    else:
        name = CUSTOM_NAMES.get((f3, f7), "kiln.unit%d.op%d" % (f3, f7))
    ops = []
    if f3 == 4:
        ops.append(REGS[rd])
    if f3 in (1,) and f7 in (0, 1):
        ops += [REGS[rs1], REGS[rs2]]
    elif f3 == 0 and f7 == 4:
        ops += [REGS[rs1], REGS[rs2]]
    elif not (f3 == 0 and f7 in (0, 2)):
        ops.append(REGS[rs1])
    return "%s\t%s" % (name, ", ".join(ops))


def cmd_disassemble(path):
    objdump = find_tool(["llvm-objdump-14", "llvm-objdump"])
    out = run([objdump, "-d", "--mattr=+m,+a,+f,+d", path], "llvm-objdump")
    line_re = re.compile(r"^(\s*[0-9a-f]+:\s+)((?:[0-9a-f]{2} ){4})\s*(.*)$")
    for line in out.splitlines():
        m = line_re.match(line)
        if m:
            b = bytes(int(x, 16) for x in m.group(2).split())
            w = struct.unpack("<I", b)[0]
            if (w & 0x7f) == 0x0b:
                line = "%s%s\t%s" % (m.group(1), m.group(2), decode_custom(w))
            else:
                csr = re.search(r"\b(csrr[sw]?c?i?|csrr)\b.*?,\s*(\d+|0x[0-9a-f]+)", m.group(3))
                if csr:
                    num = int(csr.group(2), 0)
                    if num in CSR_NAMES:
                        line += "\t# " + CSR_NAMES[num]
        print(line)
    return 0


def cmd_compile(args):
    clang = find_tool(["clang-14", "clang"])
    clangxx = find_tool(["clang++-14", "clang++", "clang-14"])
    lld = find_tool(["ld.lld-14", "ld.lld"])
    readelf = find_tool(["llvm-readelf-14", "llvm-readelf", "readelf"])
    inc, rtdir = paths()
    sources, out, user_flags, opt = [], None, [], "-O2"
    keep = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o":
            if i + 1 >= len(args):
                raise UsageError("-o needs a file name")
            out = args[i + 1]
            i += 2
            continue
        if a.startswith("-O"):
            opt = a
        elif a in ("-I", "-D", "-U", "-include"):
            if i + 1 >= len(args):
                raise UsageError("%s needs an argument" % a)
            user_flags += [a, args[i + 1]]
            i += 2
            continue
        elif a.startswith(("-I", "-D", "-U", "-W", "-std=", "-f", "-g")):
            user_flags.append(a)
        elif a == "--keep-temps":
            keep = True
        elif a.startswith("-"):
            raise UsageError("unknown option '%s'" % a)
        else:
            sources.append(a)
        i += 1
    if not sources:
        raise UsageError("no input files")
    if not out:
        out = os.path.splitext(os.path.basename(sources[0]))[0] + ".kbin"
    for s in sources:
        if not os.path.exists(s):
            raise UsageError("no such file: %s" % s)
    tmp = tempfile.mkdtemp(prefix="kiln-cc-")
    try:
        objs, all_kernels, uses_barrier = [], [], False
        base_flags = TARGET_FLAGS + [opt, "-I", inc] + user_flags
        for n, src in enumerate(sources):
            src = os.path.abspath(src)
            cxx = os.path.splitext(src)[1] in (".cc", ".cpp", ".cxx", ".C", ".c++")
            cc = clangxx if cxx else clang
            lang = ["-x", "c++", "-std=c++20"] if cxx else ["-x", "c", "-std=gnu11"]
            if any(f.startswith("-std=") for f in user_flags):
                lang = lang[:2]
            ast = run([cc] + lang + base_flags + ["-fsyntax-only", "-fno-color-diagnostics",
                                                 "-Xclang", "-ast-dump", src],
                      "compiling %s" % src)
            kernels = parse_ast(ast, [src])
            for k in kernels:
                classify(k)
            all_kernels += kernels
            text = open(src, errors="replace").read()
            if "kiln_barrier" in text:
                uses_barrier = True
            wrap = os.path.join(tmp, "wrap%d%s" % (n, ".cpp" if cxx else ".c"))
            open(wrap, "w").write(gen_wrappers(kernels, src, cxx))
            obj = os.path.join(tmp, "k%d.o" % n)
            run([cc] + lang + base_flags + ["-c", wrap, "-o", obj], "compiling %s" % src)
            objs.append(obj)
        if not all_kernels:
            raise CompileError("no kernels found: mark kernel functions with KILN_KERNEL")
        names = [k["qual"] for k in all_kernels]
        dup = {x for x in names if names.count(x) > 1}
        if dup:
            raise CompileError("kernel defined twice: %s" % ", ".join(sorted(dup)))
        meta = os.path.join(tmp, "meta.s")
        open(meta, "w").write(gen_meta_asm(all_kernels, uses_barrier))
        run([clang, "--target=riscv64-unknown-elf", "-march=rv64imafd", "-mabi=lp64d", "-mno-relax",
             "-c", meta, "-o", meta + ".o"], "assembling metadata")
        objs.append(meta + ".o")
        for f in sorted(os.listdir(rtdir)):
            if f.endswith(".c"):
                o = os.path.join(tmp, "rt_" + f + ".o")
                run([clang, "-x", "c", "-std=gnu11"] + TARGET_FLAGS + ["-O2", "-I", inc, "-c",
                    os.path.join(rtdir, f), "-o", o], "compiling the device runtime")
                objs.append(o)
        lds = os.path.join(tmp, "kiln.ld")
        open(lds, "w").write(LINKER_SCRIPT)
        run([lld, "-pie", "--no-dynamic-linker", "-z", "max-page-size=4096", "--hash-style=sysv",
             "-z", "norelro", "-T", lds, "-o", out] + objs, "linking")
        rel = run([readelf, "-r", "-W", out], "checking relocations")
        for line in rel.splitlines():
            m = re.search(r"\b(R_RISCV_\w+)", line)
            if m and m.group(1) != "R_RISCV_RELATIVE":
                os.unlink(out)
                raise CompileError("kernel binary needs relocation %s (only R_RISCV_RELATIVE "
                                   "is supported): %s" % (m.group(1), line.strip()))
        return 0
    finally:
        if keep:
            sys.stderr.write("kiln-cc: temporaries kept in %s\n" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


USAGE = """usage: kiln-cc [options] kernel.c|kernel.cpp ... [-o out.kbin]
       kiln-cc --disassemble file.kbin
       kiln-cc --info file.kbin
       kiln-cc --version
options: -O<n> -I<dir> -D<macro> -std=<std> -W<warn> -g --keep-temps
"""


def main(argv):
    # Like any filter: `kiln-cc --info f | head` ends quietly when head closes the pipe,
    # instead of a BrokenPipeError traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE) if argv else sys.stderr.write(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        if len(argv) != 1:
            sys.stderr.write("kiln-cc: error: --version takes no arguments\n%s" % USAGE)
            return 2
        # run from the source tree the placeholder is not filled in
        ver = CONFIG["version"] if not CONFIG["version"].startswith("@") else "(source tree)"
        clang = shutil.which("clang-14") or shutil.which("clang") or "not found"
        print("kiln-cc %s (kernel ISA %d, min device %d; clang: %s)" % (
            ver, ISA_VERSION, MIN_DEVICE_VERSION, clang))
        return 0
    try:
        if argv[0] in ("--disassemble", "-d", "--info"):
            if len(argv) != 2:
                raise UsageError("%s takes exactly one file" % argv[0])
            if not os.path.exists(argv[1]):
                raise UsageError("no such file: %s" % argv[1])
            return cmd_info(argv[1]) if argv[0] == "--info" else cmd_disassemble(argv[1])
        return cmd_compile(argv)
    except UsageError as e:
        sys.stderr.write("kiln-cc: error: %s\n%s" % (e, USAGE))
        return 2
    except CompileError as e:
        sys.stderr.write("kiln-cc: error: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
