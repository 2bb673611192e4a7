#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# embed.py INPUT OUTPUT SYMBOL: a C++ file defining SYMBOL[] and SYMBOL_size.
import sys
data = open(sys.argv[1], "rb").read()
sym = sys.argv[3]
with open(sys.argv[2], "w") as f:
    f.write("#include <cstddef>\n")
    f.write(f"extern const unsigned char {sym}[] = {{\n")
    for i in range(0, len(data), 16):
        f.write(",".join(str(b) for b in data[i:i + 16]) + ",\n")
    f.write("};\n")
    f.write(f"extern const size_t {sym}_size = {len(data)};\n")
