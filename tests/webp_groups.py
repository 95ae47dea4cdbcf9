"""A hand-built lossless WebP (VP8L) naming one prefix-code group per 4x4 block, each group five one-symbol
codes: its pixels cost no bits and its groups ~20 bits each, while libwebp builds ~5.7 KB of tables per group.
Written by the second image re-audit of round 42 (its gen_webp_groups.py), kept as it wrote it but for this
docstring and ``lossless_webp``, the function tests call."""
import struct

class BW:
    def __init__(self): self.acc = 0; self.n = 0; self.out = bytearray()
    def bits(self, v, n):  # LSB-first
        self.acc |= (v & ((1 << n) - 1)) << self.n; self.n += n
        while self.n >= 8:
            self.out.append(self.acc & 255); self.acc >>= 8; self.n -= 8
    def code(self, c, n):  # a Huffman code, its first (most significant) bit first
        for i in range(n - 1, -1, -1): self.bits((c >> i) & 1, 1)
    def done(self):
        if self.n: self.out.append(self.acc & 255)
        return bytes(self.out)

ORDER = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]

def simple(bw, sym=0):
    bw.bits(1, 1); bw.bits(0, 1)
    if sym < 2: bw.bits(0, 1); bw.bits(sym, 1)
    else: bw.bits(1, 1); bw.bits(sym, 8)

def all_eight(bw, max_symbol=None):
    """normal code: symbols 0..255 all of length 8 (a code-length code of one symbol, 8, read in 0 bits)"""
    bw.bits(0, 1)                     # not simple
    idx = ORDER.index(8)              # 11
    bw.bits(idx + 1 - 4, 4)           # num_codes = 12
    for i in range(idx + 1):
        bw.bits(1 if ORDER[i] == 8 else 0, 3)
    if max_symbol is None:
        bw.bits(0, 1)
    else:                             # max_symbol = 2 + value, value in 8 bits (length_nbits = 2 + 2*3)
        bw.bits(1, 1); bw.bits(3, 3); bw.bits(max_symbol - 2, 8)

def lossless_webp(w, h, groups, pbits=2):
    bw = BW()
    bw.bits(0x2f, 8); bw.bits(w - 1, 14); bw.bits(h - 1, 14); bw.bits(1, 1); bw.bits(0, 3)
    bw.bits(0, 1)          # no transform
    bw.bits(0, 1)          # no colour cache
    bw.bits(1, 1); bw.bits(pbits - 2, 3)   # meta prefix codes: entropy image
    ew, eh = -(-w // (1 << pbits)), -(-h // (1 << pbits))
    assert ew * eh >= groups, (ew * eh, groups)
    # entropy image (sub-image): no colour cache, 5 codes: green 0..255 (of 280), red 0..255, blue, alpha, dist simple
    bw.bits(0, 1)
    all_eight(bw, max_symbol=256); all_eight(bw); simple(bw); simple(bw); simple(bw)
    for i in range(ew * eh):
        g = i % groups
        bw.code(g & 255, 8); bw.code(g >> 8, 8)   # green then red; blue, alpha: 0 bits
    # groups: 5 simple codes each (green 0, red 0, blue 0, alpha 255, distance 0)
    for _ in range(groups):
        simple(bw, 0); simple(bw, 0); simple(bw, 0); simple(bw, 255); simple(bw, 0)
    data = bw.done() + bytes(64)
    if len(data) % 2: data += b"\0"
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
