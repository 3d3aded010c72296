# boot.py: runs after every reset, soft resets included (mpremote's raw-REPL soft reset too),
# before main.py. Keep it tiny and unable to lock anyone out: the meter, the safe-mode check
# (FLASH button, GPIO0, held in the first ~2 s after boot keeps the REPL on UART0 and skips
# the meter) and the hand-over of UART0 to the Modbus bus all live in main.py / board.py.
# The firmware modules come from /rom (ROMFS image) or /lib (.mpy files); see docs/deploy.md.
import gc

try:
    import esp

    esp.osdebug(None)  # no SDK debug text on UART0: it carries the Modbus bus
    del esp
except ImportError:  # not an ESP8266 (host run on the unix port)
    pass

gc.collect()
