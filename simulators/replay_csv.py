"""Vectorised parsing of the common replay CSV shape: bytes in, index/ts/value arrays out, no per-row Python."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

_NL, _COMMA, _DOT, _ZERO = 10, 44, 46, 48
_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _gather(a: np.ndarray, start: np.ndarray, length: np.ndarray | None, width: int) -> np.ndarray:
    """Bytes a[start:start+length] per row, left-aligned and zero-padded to ``width`` (``a`` is padded)."""
    m = np.lib.stride_tricks.sliding_window_view(a, width)[start]
    if length is not None:
        m[np.arange(width) >= length[:, None]] = 0
    return m


def _decimals(m: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain decimals ('36.412', '7', '.5') to float64, exactly as float() would; and which rows were plain."""
    width = m.shape[1]
    inside = np.arange(width) < length[:, None]
    dd = m - np.uint8(_ZERO)  # digits 0..9, anything else wraps above 9
    digit = inside & (dd <= 9)
    dot = inside & (m == _DOT)
    ndig = digit.sum(axis=1, dtype=np.int16)
    plain = (digit | dot | ~inside).all(axis=1) & (dot.sum(axis=1, dtype=np.int16) <= 1) & (ndig >= 1) & (ndig <= 15)
    after = np.cumsum(digit[:, ::-1], axis=1, dtype=np.int8)[:, ::-1] - digit  # digits right of each position
    num = (np.where(digit, dd, 0) * _POW10[np.minimum(after, 18)]).sum(axis=1)
    frac = np.where(dot, after, 0).sum(axis=1)
    return num.astype(np.float64) / _POW10[np.minimum(frac, 18)].astype(np.float64), plain


def _clock(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """'YYYY-MM-DD HH:MM:SS' rows → (date-hour key, seconds within the hour, which rows had that shape)."""
    d = m.astype(np.int16) - _ZERO
    sep = ((m[:, 4] == ord("-")) & (m[:, 7] == ord("-")) & ((m[:, 10] == ord(" ")) | (m[:, 10] == ord("T")))
           & (m[:, 13] == ord(":")) & (m[:, 16] == ord(":")))
    digits = d[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]]
    ok = sep & ((digits >= 0) & (digits <= 9)).all(axis=1)
    w = np.array([10**11, 10**10, 10**9, 10**8, 10**7, 10**6, 10**5, 10**4, 1000, 100, 10, 1], dtype=np.int64)
    key = digits[:, :10].astype(np.int64) @ w[2:]  # YYYYMMDDHH
    minute, second = digits[:, 10] * 10 + digits[:, 11], digits[:, 12] * 10 + digits[:, 13]
    ok &= (minute < 60) & (second < 60)
    return key, minute * 60 + second, ok


def parse_chunk(buf: bytes, ncols: int, meter_key: Callable[[bytes], int],
                hour_start: Callable[[np.ndarray], np.ndarray],
                slow_ts: Callable[[bytes], int], slow_value: Callable[[bytes], float], bad_ts: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Parse whole lines ``household,meter,kind,ts,value`` (no quotes); None if the chunk is not that shape.

    ``meter_key(b"household,meter,kind")`` gives the meter index (negative: a bad-row code);
    ``hour_start(keys)`` the epochs of local hours given as YYYYMMDDHH (``bad_ts`` where invalid); ``slow_ts`` and ``slow_value``
    parse the odd field the vectorised path does not. Returns (meter code, ts, value, line start offsets).
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(a == _NL)
    n = len(nl)
    if n == 0 or nl[-1] != len(a) - 1 or ncols != 5:
        return None
    a = np.concatenate((a, np.zeros(256, dtype=np.uint8)))  # room for the widest field past the end
    cm = np.flatnonzero(a == _COMMA)
    if len(cm) != 4 * n:
        return None
    cm = cm.reshape(n, 4)
    starts = np.concatenate(([0], nl[:-1] + 1))
    if not ((cm[:, 0] > starts) & (cm[:, 3] < nl - 1)).all():
        return None
    # meters: hash the "household,meter,kind" prefix, then resolve each distinct prefix once
    plen = cm[:, 2] - starts
    width = int(plen.max() + 7) // 8 * 8
    if width > 256:
        return None
    prefix = _gather(a, starts, plen, width)
    words = prefix.view(np.uint64).reshape(n, width // 8)
    mult = (np.arange(words.shape[1], dtype=np.uint64) * np.uint64(2 * 0x9E3779B1) + np.uint64(0x100000001B3))
    h = (words * mult).sum(axis=1, dtype=np.uint64) ^ plen.astype(np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    if not (words == words[first[inv]]).all():
        return None  # a hash collision: let the general path handle this chunk
    codes = np.zeros(len(first), dtype=np.int64)
    for j in np.argsort(first):  # in order of appearance, so meters are numbered as the general path does
        i = first[j]
        codes[j] = meter_key(buf[starts[i]:cm[i, 2]])
    meter = codes[inv]
    # timestamps: the usual fixed 19-character local time, anything else one by one
    tlen = cm[:, 3] - cm[:, 2] - 1
    ts = np.full(n, bad_ts, dtype=np.int64)
    fixed = tlen == 19
    if fixed.any():
        fi = np.flatnonzero(fixed)
        key, secs, ok = _clock(_gather(a, cm[fi, 2] + 1, None, 19))
        hk, hinv = np.unique(key[ok], return_inverse=True)
        base = hour_start(hk)
        good = base[hinv] != bad_ts
        ts[fi[ok][good]] = base[hinv][good] + secs[ok][good]
        fixed[fi[~ok]] = False
    for i in np.flatnonzero(~fixed):
        ts[i] = slow_ts(buf[cm[i, 2] + 1:cm[i, 3]])
    # values: C-speed number parsing of the value fields packed side by side; if some value is not a number at
    # all, plain decimals vectorised and anything else one by one
    vlen = nl - cm[:, 3] - 1
    value = np.zeros(0)
    if 0 < int(vlen.max()) <= 64:
        packed = _gather(a, cm[:, 3] + 1, vlen, int(vlen.max()) + 1)
        packed[packed == 0] = 32
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                value = np.fromstring(packed.tobytes(), dtype=np.float64, sep=" ")
            except (ValueError, DeprecationWarning):
                value = np.zeros(0)
    if len(value) == n and (vlen > 0).all():
        return meter, ts, value, starts
    value = np.full(n, np.nan)
    short = (vlen <= 24) & (vlen > 0)
    if short.any():
        si = np.flatnonzero(short)
        v, plain = _decimals(_gather(a, cm[si, 3] + 1, vlen[si], int(vlen[si].max())), vlen[si])
        value[si[plain]] = v[plain]
        short[si[~plain]] = False
    for i in np.flatnonzero(~short):
        value[i] = slow_value(buf[cm[i, 3] + 1:nl[i]])
    return meter, ts, value, starts
