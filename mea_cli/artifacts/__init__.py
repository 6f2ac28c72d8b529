"""What the stages write and read: the feature store (HDF5), checkpoints, what ``mea info``
reports about a store, and which samples of a store a checkpoint was trained or selected on
(docs/feature-store.md, docs/design.md)."""
