# Persistence across power cuts: two slots (files <base>0 and <base>1), each one record with a
# sequence number and a checksum. A save goes to the slot NOT holding the newest record, so a cut
# during a write leaves the other slot intact; at boot the valid slot with the highest sequence
# wins and a corrupt slot is ignored (and reported).
#
# Record: magic "EM1", sequence (u32), settings, the meter's 56-byte counter record, checksum.
import struct

import meter

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_HEAD = const("<3sIhBBBbiIB")  # magic, seq, target_min, emergency, choice, trip_soc, start_soc,
_HEAD_SIZE = const(23)      # dr_limit_w, dr_until, loads bitmask
SIZE = _HEAD_SIZE + meter.RECORD_SIZE + 4


def _sum(b, n):
    # Fletcher-32 over the first n bytes: catches torn writes and bit flips, no table in RAM
    a = 0xFFFF
    c = 0xFFFF
    for i in range(n):
        a = (a + b[i]) % 65535
        c = (c + a) % 65535
    return c << 16 | a


def pack(seq, st):
    """State settings + counters -> one record (bytes)."""
    m = 0
    for i in range(len(st.loads)):
        if st.loads[i]:
            m |= 1 << i
    b = bytearray(SIZE)
    struct.pack_into(_HEAD, b, 0, b"EM1", seq, st.target_min, 1 if st.emergency else 0,
                     st.choice, st.trip_soc_pct, st.start_soc_pct, st.dr_limit_w, st.dr_until, m)
    b[_HEAD_SIZE:_HEAD_SIZE + meter.RECORD_SIZE] = meter.record(st.counters)
    struct.pack_into("<I", b, SIZE - 4, _sum(b, SIZE - 4))
    return b


def unpack(b, st):
    """Record -> State (settings and counters); returns its sequence. ValueError if corrupt
    (then the state is left untouched)."""
    if len(b) != SIZE or b[:3] != b"EM1" or struct.unpack_from("<I", b, SIZE - 4)[0] != _sum(
            b, SIZE - 4):
        raise ValueError("store: bad record")
    h = struct.unpack_from(_HEAD, b, 0)
    c = meter.restore(bytes(b[_HEAD_SIZE:_HEAD_SIZE + meter.RECORD_SIZE]))
    if not -1 <= h[2] < 1440 or h[4] > 2 or h[5] > 100 or h[6] > 100:
        raise ValueError("store: bad settings")
    st.target_min = h[2]
    st.emergency = h[3] == 1
    st.choice = h[4]
    st.trip_soc_pct = h[5]
    st.start_soc_pct = h[6]
    st.dr_limit_w = h[7]
    # a record from firmware that counted from 1970 (before 2030 no 2000-based time is this big)
    st.dr_until = h[8] - 946684800 if h[8] >= 946684800 else h[8]
    for i in range(len(st.loads)):
        st.loads[i] = h[9] >> i & 1
    st.counters = c
    return h[1]


def load(base, st):
    """Restore the newest valid slot into st. Returns (seq or -1, number of corrupt slots)."""
    found = []
    bad = 0
    for i in range(2):
        try:
            with open(base + str(i), "rb") as f:
                b = f.read()
        except OSError:
            continue            # never written: not a fault
        if len(b) == SIZE:
            found.append((struct.unpack_from("<I", b, 3)[0], b))
        else:
            bad += 1
    found.sort(reverse=True)
    for seq, b in found:
        try:
            unpack(b, st)
            return seq, bad
        except ValueError:
            bad += 1
    return -1, bad


def save(base, seq, st):
    """Write record `seq` to slot seq % 2 (the older one). The file is rewritten whole."""
    b = pack(seq, st)
    with open(base + str(seq & 1), "wb") as f:
        f.write(b)


def save_profile(base, prof):
    """The learned household load (meter.learn) to its own file `<base>p`: magic, data, checksum.
    A cut mid-write leaves a file that fails its checksum: the profile is then learned anew."""
    b = bytearray(3 + meter.PROFILE_SIZE + 4)
    b[:3] = b"HP1"
    b[3:3 + meter.PROFILE_SIZE] = prof
    struct.pack_into("<I", b, len(b) - 4, _sum(b, len(b) - 4))
    with open(base + "p", "wb") as f:
        f.write(b)


def load_profile(base, prof):
    """Fill prof from `<base>p`. Returns 1 if the file was there but corrupt (then prof is left
    as it was: a corrupt profile is dropped, never trusted), else 0."""
    try:
        with open(base + "p", "rb") as f:
            b = f.read()
    except OSError:
        return 0
    n = 3 + meter.PROFILE_SIZE
    if len(b) != n + 4 or b[:3] != b"HP1" or struct.unpack_from("<I", b, n)[0] != _sum(b, n):
        return 1
    prof[:] = b[3:n]
    return 0
