"""Import pygame lazily and quietly: only the device classes need it, not the pure mapping."""

import os


def import_pygame():
    # pygame prints a greeting on import unless told not to; library code stays silent.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame
