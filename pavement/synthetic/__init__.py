"""Synthetic patrol runs with exact ground truth: route, road surface, vehicle, sensors, renderer.

Pure code (no file IO); ``pipelines/synth.py`` writes the run folder. The pieces:

- ``route``: a curved centreline (straights, clothoids, arcs) in the plane rectangular CS of
  Aomori (EPSG:6678) with irregularly spaced 距離標, and the (chainage s, lateral t) frame;
- ``scene``: the road surface as vectors in (s, t): lanes and markings, cracks, potholes,
  patches, ruts, ISO 8608 roughness, roadside trees and poles, the sun;
- ``lane_mesh``: the MLIT 0.5 m cells of a lane and which defects touch them;
- ``surface``: lazily generated rasters of albedo and height per chunk of road;
- ``render``: ray casting through the camera against the height field;
- ``vehicle``: speed profile with one stop, lane wander, quarter-car body motion;
- ``sensors``: GPS fixes, phone accelerometer samples, depth-sensor maps;
- ``truth``: per frame, per 20 m section and per 100 m segment indicators.
"""
