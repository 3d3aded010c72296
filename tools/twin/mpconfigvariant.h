// Board twin: a 32-bit unix port whose heap behaves like the ESP8266's (MicroPython v1.28.0,
// ports/esp8266/mpconfigport.h). Only what changes the size or the number of heap objects is
// mirrored; everything else stays the unix port's, so the host harness (sockets, ptys, files,
// ROMFS) runs unchanged. Built by tools/build_twin.py; docs/benchmarks.md has the figures.

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

// Object representation C: 31-bit small ints, 30-bit floats packed into the object word (a
// float allocates nothing), as on the ESP8266.
#define MICROPY_OBJ_REPR            (MICROPY_OBJ_REPR_C)
#define MICROPY_FLOAT_IMPL          (MICROPY_FLOAT_IMPL_FLOAT)
#define MICROPY_FLOAT_FORMAT_IMPL   (MICROPY_FLOAT_FORMAT_IMPL_BASIC)
// an int of 2**30 or more is an MPZ heap object
#define MICROPY_LONGINT_IMPL        (MICROPY_LONGINT_IMPL_MPZ)

// the ESP8266 builds these out: modules there have no __file__ (one heap string fewer each)
#define MICROPY_MODULE___FILE__     (0)
#define MICROPY_PY_BINASCII_CRC32   (0)
#define MICROPY_PY_BUILTINS_COMPLEX (0)
#define MICROPY_PY_BUILTINS_COMPILE (0)
#define MICROPY_PY_BUILTINS_EXECFILE (0)
#define MICROPY_PY_DELATTR_SETATTR  (0)
#define MICROPY_PY_SYS_PS1_PS2      (0)
#define MICROPY_PY_RANDOM_EXTRA_FUNCS (0)
#define MICROPY_PY_MATH_SPECIAL_FUNCTIONS (0)
#define MICROPY_PY_MATH_FACTORIAL   (0)
#define MICROPY_PY_MATH_ISCLOSE     (0)
#define MICROPY_OPT_MAP_LOOKUP_CACHE (0)
#define MICROPY_OPT_MPZ_BITWISE     (0)
#define MICROPY_GC_STACK_ENTRY_TYPE uint16_t

// the unix port's common features (ROMFS, asyncio, select, socket, json, framebuf, ...)
#include "../mpconfigvariant_common.h"
