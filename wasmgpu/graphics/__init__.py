"""Visual programs: guests that draw frames and show them with `env.present(ptr, width, height)`.

See README.md in this directory.
"""

from .frames import MAX_DIM, FrameCollector, exported_memory, frame_name, uses_graphics
from .images import contact_sheet, load_png, save_gif, save_png
from .run import add_arguments, collector_for, find_entry, run_visual

__all__ = ["MAX_DIM", "FrameCollector", "add_arguments", "collector_for", "contact_sheet", "exported_memory",
           "find_entry", "frame_name", "load_png", "run_visual", "save_gif", "save_png", "uses_graphics"]
