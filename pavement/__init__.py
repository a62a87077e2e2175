"""Pure domain core of the pavement inspection system.

No file or network IO here: numpy, shapely and array-level OpenCV only. IO enters through
small Protocols (see ``pavement.detections.Detector``). ``pipelines/`` and ``exporters/``
build on this package; it never imports them.
"""

__version__ = "0.1.0"
