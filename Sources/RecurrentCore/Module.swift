// RecurrentCore module.
