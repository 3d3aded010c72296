# EV charger over modbus.Bus: EVSE DIN base block 1000-1006 plus the optional extension block
# 3000-3006 (docs/charger-modbus.md). Reads FC03, writes FC16, as every public EVSE DIN master does.
# read, read_ext and set_current return the bus's own awaitable (modbus.Bus.xfer): a reading costs
# no coroutine object.
_EXT_ID = 0x4556          # register 3000 when the extension exists ('EV')
no_ext = -1               # address of a charger known to lack the extension (-1 = none known)
_silent = 0               # consecutive timeouts of the extension read while the base block answers
_base = None              # the base block read last: read_ext adds the extension to it


def _read_base(bus, n):
    global _base
    _base = (bus.reg(0), bus.reg(2), -1, -1, -1) if n else None
    return _base


def read(bus, addr):
    """-> awaitable: (limit_a, vehicle_state 1..5, -1, -1, -1) from the base block, or None.
    Then, while evse.no_ext != addr, read_ext gives the same with SOC, power and session energy."""
    return bus.xfer(addr, 3, 1000, 7, None, _read_base)


def _read_ext(bus, n):
    global no_ext, _silent
    b = _base
    if not n:
        if bus.err == 2:
            no_ext = bus.tx[0]     # illegal data address: no extension, stop asking
        elif bus.err == -1:
            _silent += 1          # a charger that ignores unknown registers instead
            if _silent >= 3:
                no_ext = bus.tx[0]
        return b
    _silent = 0
    if bus.reg(0) != _EXT_ID:
        no_ext = bus.tx[0]
        return b
    soc = bus.reg(1)
    return (b[0], b[1], soc if soc <= 100 else -1, bus.reg(2), bus.reg(3) | bus.reg(4) << 16)


def read_ext(bus, addr):
    """-> awaitable: the base reading read() just gave, with (soc_pct or -1, power_w, session_wh)
    from the extension block when it answers."""
    return bus.xfer(addr, 3, 3000, 5, None, _read_ext)


def set_current(bus, addr, amps):
    """Register 1000 (A); below 6 A means pause (0). -> awaitable: True when confirmed."""
    if amps < 6:
        amps = 0
    return bus.write_regs(addr, 1000, (amps,))


async def configure(bus, addr, timeout_s, safe_a):
    # communication timeout (3005, s, 0 = off) and fallback current (3006, A) if the extension
    # exists (until it is configured: a coroutine is fine here)
    global no_ext
    if no_ext == addr:
        return False
    e = await bus.read_regs(addr, 3, 3000, 1)
    if e is None or e[0] != _EXT_ID:
        if e is not None or bus.err == 2:
            no_ext = addr
        return False
    if safe_a < 6:
        safe_a = 0
    return await bus.write_regs(addr, 3005, (timeout_s, safe_a))
