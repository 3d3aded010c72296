# Setting up a PZEM-004T v3.0 from the REPL (docs/hardware.md, "Setting the PZEM address"): reset
# its energy counter, give it its bus address. The meter never imports this module, so these
# requests stay out of the board's heap (134 B on the twin: RAM table, docs/benchmarks.md).


async def reset_energy(bus, addr):
    # FC 0x42: request `addr 42 CRC`, the reply is the same 4 bytes -> True when echoed
    return await bus.xfer(addr, 0x42, -1, 0, None) > 0


async def set_address(bus, new_addr):
    # FC06 register 0x0002 through the general address 0xF8, which EVERY PZEM answers: only with
    # this PZEM alone on the line (docs/charger-modbus.md, "PZEM on the same bus"). True when the
    # PZEM echoed the request
    if not 1 <= new_addr <= 0xF7:
        return False
    return await bus.xfer(0xF8, 6, 2, new_addr, None) > 0
