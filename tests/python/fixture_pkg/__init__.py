"""A package, for the `pkg.module:callable` form of the application argument."""
