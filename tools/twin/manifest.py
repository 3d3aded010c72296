# What the ESP8266_GENERIC firmware freezes that this meter uses: asyncio, ssd1306, umqtt.simple
# (ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py). The two micropython-lib modules come
# from build/lib (tools/fetch_mplibs.py), passed in by tools/build_twin.py as TWIN_LIB.
import os

include("$(MPY_DIR)/extmod/asyncio")
_lib = os.environ["TWIN_LIB"]
module("ssd1306.py", base_path=_lib)
module("umqtt/simple.py", base_path=_lib)

# tools/build_twin.py --frozen: the meter frozen in as well (the frozen path of docs/deploy.md),
# with the host board in firmware/board.py's place; boot.py and main.py stay outside, as on a
# board built with firmware/manifest.py
_fw = os.environ.get("TWIN_FIRMWARE")
if _fw:
    for _n in sorted(os.listdir(_fw)):
        if _n.endswith(".py") and _n not in ("boot.py", "main.py", "manifest.py", "board.py"):
            module(_n, base_path=_fw)
    module("board.py", base_path=os.environ["TWIN_HOSTBOARD"])
