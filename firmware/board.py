# The only module that touches `machine` and `network`: NodeMCU 12-E (ESP8266) pins, the shared
# Modbus UART, the OLED's I2C, SSR relays, the hardware watchdog, the RTC and WiFi. The host run
# replaces this file with sim/hostboard/board.py, which has the same names.
# Pin map: docs/hardware.md.
import asyncio
import os
import time

import machine
import network

CONFIG = "config.json"
STORE = "store"             # store.py appends 0/1 for its two slots
SPEED = 1
NTP = 123                   # UDP port of the NTP servers clock.py syncs the RTC with
_VALID_AFTER = 757382400    # 2024-01-01 in ESP8266 seconds: an RTC earlier than this was never set

_wdt = None
_led = machine.Pin(2, machine.Pin.OUT)


def safe_mode():
    """FLASH button (GPIO0) held during the first 2 s after boot: keep the REPL, skip the meter.
    (GPIO0 low *at* reset enters the ROM bootloader, so it is read after boot.)"""
    btn = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)
    for _ in range(20):
        _led.value(not _led.value())
        if not btn.value():
            return True
        time.sleep_ms(100)
    return False


def uart():
    """UART0 swapped to GPIO15 (TX) / GPIO13 (RX), 9600 8N1: the shared Modbus bus.
    The REPL is detached from UART0 only here, after the safe-mode check."""
    os.dupterm(None, 1)
    return machine.UART(0, 9600, tx=machine.Pin(15), rx=machine.Pin(13), rxbuf=256,
                        timeout=0, timeout_char=5)


def i2c():
    """The OLED's I2C bus: SCL GPIO5/D1, SDA GPIO4/D2 (software I2C on the ESP8266; whether a
    panel answers is oled.panel's question)."""
    return machine.I2C(scl=machine.Pin(5), sda=machine.Pin(4))


def relay(pin, on):
    machine.Pin(pin, machine.Pin.OUT).value(1 if on else 0)


def watchdog():
    """Start the hardware watchdog (1.6-3.2 s on the ESP8266, cannot be stopped)."""
    global _wdt
    _wdt = machine.WDT()


def feed():
    if _wdt:
        _wdt.feed()
    _led.value(not _led.value())    # liveness blink


def utc():
    """UTC seconds since 2000-01-01 (the ESP8266's own epoch: a small int until 2034), or 0
    while the RTC has never been set (no NTP yet)."""
    t = time.time()
    return t if t > _VALID_AFTER else 0


def set_utc(t):
    tm = time.gmtime(t)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))


ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff


def sleep(ms):
    return asyncio.sleep_ms(ms)


_wlan = None


def wifi(ssid, password):
    """Start joining WiFi (returns at once; the radio keeps trying on its own)."""
    global _wlan
    network.WLAN(network.AP_IF).active(False)
    _wlan = network.WLAN(network.STA_IF)
    _wlan.active(True)
    if ssid:
        _wlan.connect(ssid, password)


def wifi_ok():
    return bool(_wlan and _wlan.isconnected())


REPORT = False      # nothing reads report lines on the board: app.py skips formatting them


def report(line):
    # the host harness reads these lines; on the board they go nowhere (UART0 is the bus)
    pass


def reset():
    machine.reset()
