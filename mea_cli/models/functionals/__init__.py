"""The functionals baseline (summary statistics + a linear model). Importing the package
registers the model."""
