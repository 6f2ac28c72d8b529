"""Pictures of a trained model (``mea viz``): t-SNE of h^e / h^a (paper Fig. 5), WAL weights psi
(Fig. 6), PSA attention maps of one sample, training curves. Headless (matplotlib Agg).

:func:`mea_cli.viz.api.make` is the entry point; the plotting modules (:mod:`.tsne`,
:mod:`.wal`, :mod:`.attention`, :mod:`.curves`) work on plain arrays.
"""

from mea_cli.viz.figures import metric_ylim, new_figure, note_empty, save_png

# the figure plumbing other stages draw with (mea ablate / sweep / compare charts)
__all__ = ["metric_ylim", "new_figure", "note_empty", "save_png"]
