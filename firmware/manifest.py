# Frozen-firmware manifest: ESP8266_GENERIC (2 MiB+ flash) with the meter modules frozen in.
# Not MicroPython code: MicroPython's build (tools/makemanifest.py) executes it. Build with
#   cd micropython/ports/esp8266
#   make BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/this/repo/firmware/manifest.py
# (docs/deploy.md has the whole recipe). boot.py, main.py and config.json still go to the
# flash filesystem with mpremote: a frozen main.py could not be replaced or skipped.

# Everything the standard 2 MiB build freezes: the port's modules (_boot, flashbdev, inisetup,
# ntptime, ...), asyncio, ssd1306, umqtt.simple, umqtt.robust, upysh, requests.
include("$(PORT_DIR)/boards/ESP8266_GENERIC/manifest_2MiB.py")

# The meter (paths are relative to this file). Keep in step with firmware/*.py:
# host_tests/test_deploy.py checks that every module but boot.py and main.py is listed.
for _name in (
    "app",
    "board",
    "clock",
    "config",
    "control",
    "evse",
    "meter",
    "modbus",
    "netpie",
    "oled",
    "pzem",
    "pzem_setup",
    "scheduler",
    "state",
    "store",
):
    module(_name + ".py")
