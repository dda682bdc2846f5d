#!/usr/bin/python3
"""A GTK3 drag source for the window e2e test: a small window at (900, 40) whose button drags the
file URIs given on the command line. xdotool then drags from it onto the otafleet window, which
makes a real OS-level file drop (GTK drag-and-drop over X11, as from a file manager).
Needs Debian's python3-gi (system python, not a venv)."""

import sys

import gi

gi.require_version("Gdk", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, Gtk  # noqa: E402

uris = [f"file://{p}" for p in sys.argv[1:]]
win = Gtk.Window(title="otafleet-e2e-drag-source")
win.set_default_size(200, 100)
win.move(900, 40)
button = Gtk.Button(label="drag me")
button.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
button.drag_source_add_uri_targets()
button.connect("drag-data-get", lambda _w, _ctx, data, _info, _time: data.set_uris(uris))
win.add(button)
win.connect("destroy", Gtk.main_quit)

def on_map(*_args):
    # Only once the window is mapped can xdotool press on it: say so then, not before.
    print("ready", flush=True)
    return False


win.connect("map-event", on_map)
win.show_all()
Gtk.main()
