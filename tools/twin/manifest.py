# What the ESP8266_GENERIC firmware freezes that this meter uses: asyncio, ssd1306, umqtt.simple
# (ports/esp8266/boards/ESP8266_GENERIC/manifest_2MiB.py). The two micropython-lib modules come
# from build/lib (tools/fetch_mplibs.py), passed in by tools/build_twin.py as TWIN_LIB.
import os

include("$(MPY_DIR)/extmod/asyncio")
_lib = os.environ["TWIN_LIB"]
module("ssd1306.py", base_path=_lib)
module("umqtt/simple.py", base_path=_lib)
