# Runs under the MicroPython unix port against the running emulator (python -m sim.emulator):
#   MICROPYPATH=sim/hostboard:firmware:host_tests:.frozen micropython host_tests/mp_bus_check.py \
#       BUS FAULTS SPEED MODE PZEM_ADDR CHARGER_ADDR
# MODE "full": PZEM + charger with extension; "noext": charger without the extension block.
# The scenario must start with the EV plugged at 50 % SOC, 800 W house, PZEM energy >= 100000 Wh.
# Prints one "ok <check>" line per check and "ALL OK" at the end; raises on the first failure.
import sys
import time
import asyncio

import modbus
import pzem
import pzem_setup
import evse
from board import Pty as PtyUart     # the host board's UART over the pty

BUS, FAULTS, SPEED, MODE = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
PA, CA = int(sys.argv[5]), int(sys.argv[6])



async def evse_read(bus, a):
    # the charger as control.Control.run reads it: the base block, then the extension while the
    # charger may have one
    e = await evse.read(bus, a)
    if e and evse.no_ext != a:
        e = await evse.read_ext(bus, a)
    return e

def check(cond, what, detail=""):
    if not cond:
        raise AssertionError("%s %s" % (what, detail))
    print("ok", what)


def fault(line):
    f = open(FAULTS, "a")
    f.write(line + "\n")
    f.close()


async def until(fn, real_s, step=0.02):
    # await fn() until it returns a true value or real_s real seconds pass; returns the last value
    t0 = time.ticks_ms()
    while True:
        v = await fn()
        if v or time.ticks_diff(time.ticks_ms(), t0) > real_s * 1000:
            return v
        await asyncio.sleep(step)


async def full(bus):
    p = await pzem.read(bus, PA)
    check(p is not None and 2000 < p[0] < 2500 and p[4] == 500, "pzem read", p)
    check(7000 < p[2] < 9000 and p[3] >= 100000, "pzem power/energy", p)
    e = await evse_read(bus, CA)
    check(e is not None and e[1] == 2 and e[2] == 50 and e[3] == 0, "charger read (B, 50 %)", e)

    # a new current is followed after the charger's delay (2 simulated s)
    t0 = time.ticks_ms()
    check(await evse.set_current(bus, CA, 16), "set_current 16")
    r = await bus.read_regs(CA, 3, 1000, 2)
    dt = time.ticks_diff(time.ticks_ms(), t0)
    check(r is not None and r[0] == 16, "reg 1000 reads back 16", r)
    if dt < 1000 * 2 / SPEED / 2:
        check(r[1] == 0, "not followed immediately", r)

    async def followed():
        x = await bus.read_regs(CA, 3, 1001, 2)
        return x is not None and x[0] == 16 and x[1] == 3

    check(await until(followed, 5), "followed: 1001 = 16 A, state C")
    e = await evse_read(bus, CA)
    check(e[1] == 3 and 3000 < e[3] < 4000, "charging power", e)
    p2 = await pzem.read(bus, PA)
    check(p2[2] > p[2] + 25000, "PZEM sees the EV", (p[2], p2[2]))

    # energy reset
    check(await pzem_setup.reset_energy(bus, PA), "reset energy")
    p3 = await pzem.read(bus, PA)
    check(p3 is not None and p3[3] < p2[3] and p3[3] < 1000, "energy reset", (p2[3], p3))

    # exception replies
    x = bus.exceptions
    check(await bus.read_regs(CA, 3, 1500, 1) is None and bus.exceptions == x + 1
          and bus.last_exc == 2, "charger bad register -> exception 2")
    check(await bus.read_regs(PA, 4, 0x20, 1) is None and bus.last_exc == 2,
          "pzem bad register -> exception 2")
    check(not await bus.write_regs(CA, 1002, (1,)) and bus.last_exc == 2, "read-only -> exception 2")
    check(not await evse.set_current(bus, CA, 200) and bus.last_exc == 3, "200 A -> exception 3")
    check(not await pzem_setup.reset_energy(bus, CA) and bus.last_exc == 1, "0x42 at charger -> exception 1")

    # absent address: silence
    t, x = bus.timeouts, bus.exceptions
    check(await bus.read_regs(7, 3, 1000, 1) is None and bus.timeouts == t + 1
          and bus.exceptions == x, "absent address -> silence")

    # corrupt CRC
    c = bus.crc_errors
    fault("pzem crc 3600")

    async def crc_seen():
        r = await pzem.read(bus, PA)
        return r is None and bus.crc_errors > c

    check(await until(crc_seen, 5), "crc fault -> None, crc_errors counted")
    check(await evse_read(bus, CA) is not None, "charger fine during pzem crc fault")
    fault("pzem ok")
    check(await until(lambda: pzem.read(bus, PA), 5) is not None, "pzem back after crc fault")

    # silence
    t = bus.timeouts
    fault("charger silent 3600")

    async def silent_seen():
        return await evse_read(bus, CA) is None and bus.timeouts > t

    check(await until(silent_seen, 5), "charger silent -> None after timeout")
    check(await pzem.read(bus, PA) is not None, "pzem fine while charger silent")
    fault("charger ok")
    check(await until(lambda: evse_read(bus, CA), 5) is not None, "charger back")

    # late replies: time out, then the stale reply is drained
    t = bus.timeouts
    fault("pzem late 3600")

    async def late_seen():
        return await pzem.read(bus, PA) is None and bus.timeouts > t

    check(await until(late_seen, 5), "late reply -> timeout")
    fault("pzem ok")
    await asyncio.sleep(0.8)
    r = await until(lambda: pzem.read(bus, PA), 5)
    check(r is not None and 2000 < r[0] < 2500, "good read after late replies", r)

    # PZEM re-addressing through 0xF8 (only the PZEM answers the general address)
    check(await pzem_setup.set_address(bus, 5), "set_address 5")
    check(await pzem.read(bus, 5) is not None, "pzem answers at 5")
    check(await pzem.read(bus, PA) is None, "old address silent")
    check(await pzem_setup.set_address(bus, PA), "set_address back")
    check(await pzem.read(bus, PA) is not None, "pzem answers at old address again")

    # communication timeout -> safe current
    check(await evse.configure(bus, CA, 10, 0), "configure timeout 10 s, safe 0 A")
    r = await bus.read_regs(CA, 3, 3005, 2)
    check(r == [10, 0], "3005/3006 read back", r)

    async def fell_back():
        e = await evse_read(bus, CA)
        return e is not None and e[0] == 0 and e[1] == 2

    check(await until(fell_back, 20 / SPEED + 5), "fallback to safe current after timeout")
    check(await evse.configure(bus, CA, 0, 0), "timeout off")


async def noext(bus):
    e = await evse_read(bus, CA)
    check(e is not None and e[2:] == (-1, -1, -1), "no extension -> -1s", e)
    check(evse.no_ext == CA and bus.last_exc == 2, "extension absence remembered")
    n = bus.exceptions
    e = await evse_read(bus, CA)
    check(e is not None and bus.exceptions == n, "extension not asked again")
    check(not await evse.configure(bus, CA, 10, 0), "configure -> False")
    check(await evse.set_current(bus, CA, 10), "set_current still works")


async def main():
    u = PtyUart(BUS)
    bus = modbus.Bus(u, timeout_ms=150)
    if MODE == "full":
        await full(bus)
    else:
        await noext(bus)
    print("ALL OK", bus.crc_errors, bus.timeouts, bus.exceptions)
    u.close()


asyncio.run(main())
