# PZEM-004T v3.0 over modbus.Bus. Input registers 0x0000-0x0009 (FC04), 32-bit values low word first:
# 0 voltage 0.1 V, 1/2 current 1 mA, 3/4 power 0.1 W, 5/6 energy 1 Wh, 7 frequency 0.1 Hz,
# 8 power factor 0.01, 9 alarm (0xFFFF = power above the threshold in holding register 1).
# Resetting its energy and setting its address are REPL jobs: pzem_setup.py.


def _reading(bus, n):
    if not n:
        return None
    # (bus.reg(i) each time: a bound method kept in a name would be a heap object per reading)
    return (bus.reg(0), bus.reg(1) | bus.reg(2) << 16, bus.reg(3) | bus.reg(4) << 16,
            bus.reg(5) | bus.reg(6) << 16, bus.reg(7), bus.reg(8), 1 if bus.reg(9) else 0)


def read(bus, addr):
    """-> awaitable: (voltage_dv, current_ma, power_dw, energy_wh, freq_dhz, pf_pct, alarm 0/1)
    or None."""
    return bus.xfer(addr, 4, 0, 10, None, _reading)
