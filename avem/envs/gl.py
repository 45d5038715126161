"""Choose MuJoCo's OpenGL backend (``MUJOCO_GL``) before dm_control is imported.

dm_control fixes its rendering backend at import time. ``MUJOCO_GL=egl`` renders headless
(``apt-get install libegl1 libegl-mesa0``), but where EGL cannot initialise a display
(libEGL missing, or libEGL without a vendor driver) ``import dm_control.suite`` itself
fails, which would break the state-based tasks too. So, when ``MUJOCO_GL`` is unset, we
probe EGL exactly as dm_control does (query devices, open a device display, initialise it)
and set ``egl`` only if that works; otherwise ``disable`` (importing works, rendering raises
``RuntimeError``), or, with an X ``DISPLAY``, leave it unset so dm_control picks GLFW.
A ``MUJOCO_GL`` set by the user is always kept.
"""
from __future__ import annotations

import ctypes
import os
import sys

_EGL_PLATFORM_DEVICE_EXT = 0x313F
_MAX_DEVICES = 16


def egl_works() -> bool:
    """True iff libEGL loads and some EGL device gives an initialisable display."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    query_ptr = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
    display_ptr = egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if not query_ptr or not display_ptr:
        return False
    query = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                             ctypes.POINTER(ctypes.c_int))(query_ptr)
    get_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p,
                                   ctypes.c_void_p)(display_ptr)
    egl.eglInitialize.restype = ctypes.c_uint
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    devices = (ctypes.c_void_p * _MAX_DEVICES)()
    count = ctypes.c_int(0)
    if not query(_MAX_DEVICES, devices, ctypes.byref(count)):
        return False
    for device in devices[: count.value]:
        display = get_display(_EGL_PLATFORM_DEVICE_EXT, device, None)
        if display and egl.eglInitialize(display, None, None):
            egl.eglTerminate(display)
            return True
    return False


def configure_mujoco_gl() -> str | None:
    """Set ``MUJOCO_GL`` if unset and dm_control not yet imported; returns the value in force."""
    if "MUJOCO_GL" not in os.environ and "dm_control" not in sys.modules:
        if egl_works():
            os.environ["MUJOCO_GL"] = "egl"
        elif not os.environ.get("DISPLAY"):
            os.environ["MUJOCO_GL"] = "disable"
    return os.environ.get("MUJOCO_GL")
