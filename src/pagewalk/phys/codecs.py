"""Page decompressors for kdump-compressed dumps (makedumpfile's `-c`, `-l`, `-p`, `-z`).

zlib and zstd come from their libraries; LZO1X and Snappy, which have no
wheel-installable binding, are small decoders written from the formats
(LZO1X as linux lib/lzo/lzo1x_decompress_safe.c reads it; Snappy's raw
format as its format description gives it). Every decoder refuses input
that runs short, copies from before the start, or yields a different size
(CodecError names what).

>>> lzo1x_decompress(bytes([17 + 4]) + b"page" + bytes([0x11, 0, 0]), 4)
b'page'
>>> snappy_decompress(bytes([8, 0x04]) + b"ab" + bytes([0x09, 2]), 8)        # literal "ab", copy 6 from 2 back
b'abababab'
"""

import zlib

import zstandard

__all__ = ["CodecError", "decompress", "lzo1x_decompress", "snappy_decompress", "CODECS"]


class CodecError(ValueError):
    """Compressed data that does not decode to one page."""


def lzo1x_decompress(src: bytes, size: int) -> bytes:
    """Decode one LZO1X block that must expand to exactly `size` bytes."""
    try:
        out = _lzo1x(src, size)
    except IndexError:
        raise CodecError("LZO input ends in the middle of an instruction") from None
    if len(out) != size:
        raise CodecError(f"LZO data expands to {len(out)} bytes, not {size}")
    return bytes(out)


def _extend(src: bytes, ip: int, base: int) -> tuple[int, int]:
    """A run length continued in zero bytes (255 each) and a final byte: (length, new ip)."""
    t = 0
    while src[ip] == 0:
        t += 255
        ip += 1
    return t + base + src[ip], ip + 1


def _copy_match(out: bytearray, distance: int, length: int, size: int) -> None:
    if distance <= 0 or distance > len(out):
        raise CodecError(f"match reaches {distance} bytes back, before the start of the output")
    if len(out) + length > size:
        raise CodecError("data expands past the page")
    start = len(out) - distance
    if distance >= length:
        out += out[start:start + length]
    else:                                       # overlapping: the last `distance` bytes repeat
        chunk = bytes(out[start:])
        reps, rest = divmod(length, distance)
        out += chunk * reps + chunk[:rest]


def _copy_literals(out: bytearray, src: bytes, ip: int, count: int, size: int) -> int:
    if ip + count > len(src):
        raise CodecError("literal run past the end of the input")
    if len(out) + count > size:
        raise CodecError("data expands past the page")
    out += src[ip:ip + count]
    return ip + count


def _lzo1x(src: bytes, size: int) -> bytearray:
    if len(src) < 3:
        raise CodecError("LZO input shorter than 3 bytes")
    out = bytearray()
    end = len(src)
    ip, op, state, nxt = 0, 0, 0, 0
    mode = None                 # what the instruction just read asks for: literals, a match, trailing literals
    if src[0] > 17:
        t = src[0] - 17
        ip = 1
        mode, nxt = ("trailing", t) if t < 4 else ("literals", 0)
    while True:
        if mode is None:
            t = src[ip]
            ip += 1
            if t < 16:
                if state == 0:                              # a literal run
                    if t == 0:
                        t, ip = _extend(src, ip, 15)
                    t += 3
                    mode = "literals"
                elif state != 4:                            # 2-byte match right after a short literal run
                    nxt, distance, t = t & 3, 1 + (t >> 2) + (src[ip] << 2), 2
                    ip += 1
                    mode = "match"
                else:                                       # 3-byte match, distance past M2_MAX_OFFSET
                    nxt, distance, t = t & 3, 2049 + (t >> 2) + (src[ip] << 2), 3
                    ip += 1
                    mode = "match"
            elif t >= 64:                                   # M2: length 3..8, distance up to 2048
                nxt, distance = t & 3, 1 + ((t >> 2) & 7) + (src[ip] << 3)
                ip += 1
                t = (t >> 5) + 1
                mode = "match"
            elif t >= 32:                                   # M3: distance up to 16384
                t = (t & 31) + 2
                if t == 2:
                    t, ip = _extend(src, ip, 33)
                word = src[ip] | src[ip + 1] << 8
                ip += 2
                nxt, distance = word & 3, 1 + (word >> 2)
                mode = "match"
            else:                                           # M4: distance 16385..49151, or the end marker
                far = (t & 8) << 11
                t = (t & 7) + 2
                if t == 2:
                    t, ip = _extend(src, ip, 9)
                word = src[ip] | src[ip + 1] << 8
                ip += 2
                nxt, distance = word & 3, far + (word >> 2)
                if distance == 0:
                    if t != 3:
                        raise CodecError("LZO end marker with a bad length")
                    if ip != end:
                        raise CodecError(f"LZO stream ends {end - ip} bytes before its input does")
                    return out
                distance += 0x4000
                mode = "match"
        if mode == "literals":
            if ip + t > end or op + t > size:
                raise CodecError("literal run past the end of the input or the page")
            out += src[ip:ip + t]
            ip, op, state, mode = ip + t, op + t, 4, None
            continue
        if mode == "match":                                 # overlapping copies repeat the last `distance` bytes
            if distance > op or op + t > size:
                raise CodecError(f"match of {t} reaches {distance} bytes back at output {op}: outside the page")
            start = op - distance
            if distance >= t:
                out += out[start:start + t]
            else:
                reps, rest = divmod(t, distance)
                chunk = out[start:]
                out += chunk * reps + chunk[:rest]
            op += t
        if nxt:                                             # "trailing": 0-3 literals after a match
            if ip + nxt > end or op + nxt > size:
                raise CodecError("literal run past the end of the input or the page")
            out += src[ip:ip + nxt]
            ip, op = ip + nxt, op + nxt
        state, mode = nxt, None


def snappy_decompress(src: bytes, size: int) -> bytes:
    """Decode one raw Snappy block that must expand to exactly `size` bytes."""
    try:
        length, shift, ip = 0, 0, 0
        while True:
            byte = src[ip]
            ip += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if length != size:
            raise CodecError(f"Snappy data says {length} bytes, not {size}")
        out = bytearray()
        while ip < len(src):
            tag = src[ip]
            ip += 1
            kind, high = tag & 3, tag >> 2
            if kind == 0:                                   # literal; lengths over 60 in 1-4 more bytes
                if high >= 60:
                    extra = high - 59
                    high = int.from_bytes(src[ip:ip + extra], "little")
                    ip += extra
                ip = _copy_literals(out, src, ip, high + 1, size)
                continue
            if kind == 1:
                count, distance = 4 + (high & 7), (high >> 3) << 8 | src[ip]
                ip += 1
            else:
                width = 2 if kind == 2 else 4
                count, distance = high + 1, int.from_bytes(src[ip:ip + width], "little")
                if ip + width > len(src):
                    raise IndexError
                ip += width
            _copy_match(out, distance, count, size)
    except IndexError:
        raise CodecError("Snappy input ends in the middle of an element") from None
    if len(out) != size:
        raise CodecError(f"Snappy data expands to {len(out)} bytes, not {size}")
    return bytes(out)


def _zlib(src: bytes, size: int) -> bytes:
    try:
        out = zlib.decompress(src, bufsize=size)
    except zlib.error as e:
        raise CodecError(f"zlib: {e}") from None
    if len(out) != size:
        raise CodecError(f"zlib data expands to {len(out)} bytes, not {size}")
    return out


def _zstd(src: bytes, size: int) -> bytes:
    try:
        out = zstandard.ZstdDecompressor().decompressobj().decompress(src)
    except zstandard.ZstdError as e:
        raise CodecError(f"zstd: {e}") from None
    if len(out) != size:
        raise CodecError(f"zstd data expands to {len(out)} bytes, not {size}")
    return out


#: makedumpfile's page-descriptor flags (DUMP_DH_COMPRESSED_*) and their decoders.
CODECS = {0x1: ("zlib", _zlib), 0x2: ("lzo", lzo1x_decompress), 0x4: ("snappy", snappy_decompress),
          0x20: ("zstd", _zstd)}


def decompress(flag: int, src: bytes, size: int) -> bytes:
    """The page a descriptor with compression `flag` holds."""
    name, decoder = CODECS[flag]
    return decoder(src, size)
