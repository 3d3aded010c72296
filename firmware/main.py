# Boot entry. The meter lives in app.py, which runs from the ROMFS image (or frozen / .mpy), so
# nothing big is compiled from source at boot (compiling it would take ~20 KB of heap).
import sys

import app
import board

try:
    app.run()
except KeyboardInterrupt:   # ^C (safe mode REPL) or SIGINT on the host: stop quietly
    print("meter stopped")
except Exception as e:      # noqa: BLE001 - anything unexpected: log it and restart clean
    sys.print_exception(e)
    board.reset()
