// ImageFrames module.
