# PZEM-004T v3.0 over modbus.Bus. Input registers 0x0000-0x0009 (FC04), 32-bit values low word first:
# 0 voltage 0.1 V, 1/2 current 1 mA, 3/4 power 0.1 W, 5/6 energy 1 Wh, 7 frequency 0.1 Hz,
# 8 power factor 0.01, 9 alarm (0xFFFF = power above the threshold in holding register 1).
# Resetting its energy and setting its address are REPL jobs: pzem_setup.py.


async def read(bus, addr):
    # -> (voltage_dv, current_ma, power_dw, energy_wh, freq_dhz, pf_pct, alarm 0/1) or None
    r = await bus.read_regs(addr, 4, 0, 10)
    if r is None:
        return None
    return (r[0], r[1] | r[2] << 16, r[3] | r[4] << 16, r[5] | r[6] << 16, r[7], r[8],
            1 if r[9] else 0)

