/// Plotting: raster line charts and heatmaps drawn into an RGB canvas and written as PNG.
///
/// `PNGCodec` is C code calling libpng; SwiftPM links a system library only for Swift modules
/// that import its module map, so importing `CPNG` here links libpng into every product that
/// uses `PNGCodec` through this module.
@_exported import PNGCodec
import CPNG
