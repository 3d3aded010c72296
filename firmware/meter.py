# Metering arithmetic, pure: integer Wh by tariff period and consumer, today and this month, with
# local-time rollover, a bill, and a fixed-size record for the store. No clock reads, no I/O:
# callers pass the sample's power, duration and tariff. Energy is integer Wh plus an integer
# remainder in W*ms, so the sum is the exact integral of the samples (the ESP8266's 30-bit floats
# would lose Wh after a few months).
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# (const names with a leading _ cost no RAM on the board: no qstr, no module dict entry)

MAX_W = 26000   # the most a PZEM-004T 100 A can measure (100 A x 260 V)

_T_OFF = const(0)       # tariff periods
_T_PEAK = const(1)
_T_EM = const(2)        # EV energy drawn while emergency charging is on

# counter list indices
C_DAY_OFF = 0   # today, whole supply by tariff period (house + EV)
C_DAY_PEAK = 1
C_DAY_EM = 2
C_MON_OFF = 3   # this month, same split
C_MON_PEAK = 4
C_MON_EM = 5
C_DAY_EV = 6    # the EV's share, today / this month
C_MON_EV = 7
C_TOTAL = 8     # lifetime Wh, never decreases
C_DAY = 9       # local day number the "today" counters belong to, -1 = none yet
C_MON = 10      # year * 12 + month - 1 the month counters belong to, -1 = none yet
C_ACC_H = 11    # W*ms remainders not yet a whole Wh: house ...
C_ACC_E = 12    # ... and EV
_C_PZEM = const(13)     # last PZEM energy register (Wh), -1 = unknown
N = 14

_WMS_PER_WH = const(3600000)
PZEM_WRAP = 10000000    # the PZEM energy register wraps after 9 999.99 kWh
_FMT = "<14i"
RECORD_SIZE = 56


def new():
    c = [0] * N
    c[C_DAY] = c[C_MON] = c[_C_PZEM] = -1
    return c


_DAYS_1970_2000 = const(10957)  # the meter counts seconds from 2000, its day counter from 1970


def roll(c, local_s):
    """Start new day/month counters when the local date moves forward. local_s: local seconds
    since 2000-01-01. A clock that jumps back never clears anything: billing data does not go
    backwards."""
    day = local_s // 86400 + _DAYS_1970_2000
    if day > c[C_DAY]:
        if c[C_DAY] >= 0:
            c[C_DAY_OFF] = c[C_DAY_PEAK] = c[C_DAY_EM] = c[C_DAY_EV] = 0
        c[C_DAY] = day
        # days since 1970 -> year * 12 + month - 1 (proleptic Gregorian, integers only)
        z = day + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        m = mp + 3 if mp < 10 else mp - 9
        mon = (yoe + era * 400 + (1 if m <= 2 else 0)) * 12 + m - 1
        if mon > c[C_MON]:
            if c[C_MON] >= 0:
                c[C_MON_OFF] = c[C_MON_PEAK] = c[C_MON_EM] = c[C_MON_EV] = 0
            c[C_MON] = mon


def add(c, dt_ms, power_w, ev_power_w, peak, emergency, pzem_wh=-1):
    """Account one sample: power_w is the whole supply over dt_ms, ev_power_w the EV's part.

    House energy goes to the peak or off-peak period; EV energy to the emergency period while
    emergency charging is on. When the PZEM's own energy register is given (pzem_wh >= 0) the
    whole-supply Wh follow its delta (1 Wh resolution, wrap handled) and the house share is that
    minus the EV's integral; a reset or implausible jump falls back to the power integral.
    After an outage of the PZEM, dt_ms is the whole gap: the register delta covers it exactly,
    bounded only by what the PZEM can measure at all (MAX_W), not by the power after the gap.
    """
    if ev_power_w < 0:
        ev_power_w = 0
    if ev_power_w > power_w:
        ev_power_w = power_w if power_w > 0 else 0
    t = _T_PEAK if peak else _T_OFF
    acc = c[C_ACC_E] + ev_power_w * dt_ms
    ev_wh = acc // _WMS_PER_WH
    c[C_ACC_E] = acc - ev_wh * _WMS_PER_WH
    # house energy in W*ms: the PZEM register delta minus the EV's Wh when usable, else the
    # power integral; the house remainder (possibly a small debt) carries to the next sample
    h = (power_w - ev_power_w) * dt_ms
    last = c[_C_PZEM]
    if pzem_wh >= 0:
        c[_C_PZEM] = pzem_wh
        if last >= 0:
            d = pzem_wh - last
            if d < 0:
                d += PZEM_WRAP
            # more than the PZEM can measure in the gap is a register reset, not energy (the
            # power now says nothing about the gap: the load may have been higher meanwhile)
            if d * _WMS_PER_WH <= MAX_W * dt_ms + 10 * _WMS_PER_WH:
                h = (d - ev_wh) * _WMS_PER_WH
    h += c[C_ACC_H]
    h_wh = h // _WMS_PER_WH if h > 0 else 0
    h -= h_wh * _WMS_PER_WH
    # a stuck register must not build an unbounded debt: forgive beyond 10 Wh
    c[C_ACC_H] = h if h > -10 * _WMS_PER_WH else -10 * _WMS_PER_WH
    c[C_DAY_OFF + t] += h_wh
    c[C_MON_OFF + t] += h_wh
    t = _T_EM if emergency else t
    c[C_DAY_OFF + t] += ev_wh
    c[C_MON_OFF + t] += ev_wh
    c[C_DAY_EV] += ev_wh
    c[C_MON_EV] += ev_wh
    c[C_TOTAL] += h_wh + ev_wh


PROFILE_SIZE = 288     # learned household load: 96 slots (scheduler.SLOT_S), u16 W + u8 days


def learn(prof, i, avg_w):
    """Fold one half-hour's mean household load (W) into slot i of the profile (a bytearray of
    PROFILE_SIZE: 96 little-endian u16 W, then 96 u8 day counts). Fast up, slow down (half of a
    rise, an eighth of a fall): the value settles in the upper part of the slot's day-to-day
    spread, so the plan errs towards less power for the car, never more."""
    w = prof[2 * i] | prof[2 * i + 1] << 8
    n = prof[192 + i]
    if avg_w < 0:
        avg_w = 0
    if not n:
        w = avg_w
    elif avg_w > w:
        w += (avg_w - w + 1) // 2
    else:
        w -= (w - avg_w) // 8
    if w > 65535:
        w = 65535
    prof[2 * i] = w & 255
    prof[2 * i + 1] = w >> 8
    if n < 255:
        prof[192 + i] = n + 1


def bill(c, cfg, month):
    """Money owed today (month=False) or this month, from the Wh counters and the prices."""
    p = cfg["price"]
    i = C_MON_OFF if month else C_DAY_OFF
    return (c[i] * p["offpeak"] + c[i + 1] * p["peak"] + c[i + 2] * p["emergency"]) / 1000


def record(c):
    """The counters as a fixed 56-byte record for the store."""
    return struct.pack(_FMT, *c)


def restore(b):
    """Record -> counter list; ValueError if it is not a plausible record."""
    if len(b) != RECORD_SIZE:
        raise ValueError("meter record: bad size")
    c = list(struct.unpack(_FMT, b))
    for i in range(C_DAY):
        if c[i] < 0:
            raise ValueError("meter record: negative counter")
    return c
