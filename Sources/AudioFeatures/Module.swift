// AudioFeatures module.
