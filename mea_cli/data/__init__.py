"""Data: synthetic stores, importers of benchmark features, dataset presets, masked batches."""
