# Run on the board twin (bench/ram_table.py starts it): the heap each import and each boot-time
# object of the meter takes, in the order app.py makes them. Prints "name bytes" lines.
import gc
import os
import sys
import vfs

with open(os.getenv("SIM_IMAGE"), "rb") as f:
    _buf = f.read()
vfs.mount(vfs.VfsRom(memoryview(_buf)), "/rom")
sys.path[:] = [".frozen", "/rom", "/rom/lib"]
gc.collect()
_last = [gc.mem_alloc()]


def step(name):
    gc.collect()
    a = gc.mem_alloc()
    print(name, a - _last[0])
    _last[0] = a


print("start", _last[0] - len(_buf))
import asyncio  # noqa: E402
step("import asyncio (frozen)")
import board  # noqa: E402
step("import board")
import config  # noqa: E402
step("import config")
cfg = config.load(board.CONFIG)
step("config dict")
del config
del sys.modules["config"]
step("del config module")
import meter  # noqa: E402
step("import meter")
import state  # noqa: E402
step("import state")
import store  # noqa: E402
step("import store")
st = state.State(len(cfg["loads"]))
st.counters = meter.new()
step("State + counters")
import scheduler  # noqa: E402
step("import scheduler")
import pzem  # noqa: E402
import evse  # noqa: E402
step("import pzem + evse")
import modbus  # noqa: E402
step("import modbus")
import control  # noqa: E402
step("import control")
bus = modbus.Bus(board.uart())
step("modbus.Bus + UART")
ctl = control.Control(cfg, st, bus, board)
step("Control")
import oled  # noqa: E402
pn = oled.panel(board.i2c())
del oled
del sys.modules["oled"]
step("OLED panel (the ssd1306 driver starts it, then is dropped)")
import oled  # noqa: E402
step("import oled (while a page is drawn)")
del oled
del sys.modules["oled"]
step("oled dropped after its page")
import netpie  # noqa: E402
step("import netpie")
cl = netpie.Cloud(cfg, st, board)
step("netpie.Cloud")
cl.prepare()
step("umqtt.simple (frozen) and its MQTTClient, held from boot to the first connect")
cl.u = cl.m = None
sys.modules.pop("umqtt.simple")
sys.modules.pop("umqtt")
step("umqtt.simple dropped after the connect")
import app  # noqa: E402
step("import app")


async def _t():
    await asyncio.sleep_ms(1)


tasks = [asyncio.create_task(_t()) for _ in range(6)]
step("6 asyncio tasks")
gc.collect()
print("total", gc.mem_alloc() - len(_buf))
