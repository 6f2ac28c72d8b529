"""Layers shared by several model families: attention and its map operations, Transformer
encoders, length grouping, the uni-modal extractor, exclusive/agnostic encoders, the
discriminators and HSIC."""
