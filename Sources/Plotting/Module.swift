// Plotting module.
