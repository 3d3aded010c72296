# EV charger over modbus.Bus: EVSE DIN base block 1000-1006 plus the optional extension block
# 3000-3006 (docs/charger-modbus.md). Reads FC03, writes FC16, as every public EVSE DIN master does.
_EXT_ID = 0x4556          # register 3000 when the extension exists ('EV')
no_ext = -1               # address of a charger known to lack the extension (-1 = none known)
_silent = 0               # consecutive timeouts of the extension read while the base block answers


async def read(bus, addr):
    # -> (limit_a, vehicle_state 1..5, soc_pct or -1, power_w or -1, session_wh or -1) or None
    global no_ext, _silent
    r = await bus.read_regs(addr, 3, 1000, 7)
    if r is None:
        return None
    if no_ext == addr:
        return (r[0], r[2], -1, -1, -1)
    x = bus.exceptions
    t = bus.timeouts
    e = await bus.read_regs(addr, 3, 3000, 5)
    if e is None:
        if bus.exceptions != x and bus.last_exc == 2:
            no_ext = addr         # illegal data address: no extension, stop asking
        elif bus.timeouts != t:
            _silent += 1          # a charger that ignores unknown registers instead
            if _silent >= 3:
                no_ext = addr
        return (r[0], r[2], -1, -1, -1)
    _silent = 0
    if e[0] != _EXT_ID:
        no_ext = addr
        return (r[0], r[2], -1, -1, -1)
    return (r[0], r[2], e[1] if e[1] <= 100 else -1, e[2], e[3] | e[4] << 16)


async def set_current(bus, addr, amps):
    # register 1000 (A); below 6 A means pause (0)
    if amps < 6:
        amps = 0
    return await bus.write_regs(addr, 1000, (amps,))


async def configure(bus, addr, timeout_s, safe_a):
    # communication timeout (3005, s, 0 = off) and fallback current (3006, A) if the extension exists
    global no_ext
    if no_ext == addr:
        return False
    x = bus.exceptions
    e = await bus.read_regs(addr, 3, 3000, 1)
    if e is None or e[0] != _EXT_ID:
        if e is not None or (bus.exceptions != x and bus.last_exc == 2):
            no_ext = addr
        return False
    if safe_a < 6:
        safe_a = 0
    return await bus.write_regs(addr, 3005, (timeout_s, safe_a))
