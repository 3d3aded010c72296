# Board twin: 32-bit (4-byte pointers, 16-byte GC blocks, as on the ESP8266); set here, not on
# the command line, so the mpy-cross sub-build stays a normal 64-bit host tool.
MICROPY_FORCE_32BIT = 1
# no threads on the ESP8266; FFI, TLS and btree need libraries this build has no use for
MICROPY_PY_THREAD = 0
MICROPY_PY_FFI = 0
MICROPY_PY_SSL = 0
MICROPY_PY_BTREE = 0
# the board's REPL is pyexec's, raw REPL included (mpremote, tools/flash.sh): MicroPython's own
# readline gives the twin the same (its state is static; nothing on the heap until the REPL runs)
MICROPY_USE_READLINE = 1
MICROPY_VFS_FAT = 0
MICROPY_VFS_LFS1 = 0
MICROPY_VFS_LFS2 = 0

PROG = micropython
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
