"""``mea eval --paper``: the papers' rows are marked "not comparable" unless the data are the
real benchmark's test split with the CMU features, and papers are cited by title and table."""

from __future__ import annotations

from importlib import resources

from rich.console import Console

from mea_cli.train.evaluate import EvalResult, paper_comparability, paper_rows, render_eval

FAMILY = {"mea": "mea", "mfsa": "mea", "mcr": "mcr", "fdmer": "fdmer", "mult": "mult"}
"""Each model with a paper -> the family package that holds its paper values."""


def schema(kind: str) -> dict:
    """A checkpoint schema for imported CMU features, or for ``mea extract`` features."""
    if kind == "imported":
        dims = {"text": 300, "vision": 35, "audio": 74}
        known = {"text": "GloVe", "vision": "Facet", "audio": "COVAREP"}
        return {
            m: {"dim": d, "extractor": {"name": "import-mult", "parameters": {
                "features_if_cmu_benchmark": known[m]}}}
            for m, d in dims.items()
        }  # fmt: skip
    return {
        "text": {"dim": 50, "extractor": {"name": "glove-6b-50d", "parameters": {}}},
        "vision": {"dim": 55, "extractor": {"name": "mediapipe-blendshapes", "parameters": {}}},
        "audio": {"dim": 25, "extractor": {"name": "opensmile-egemaps", "parameters": {}}},
    }


def test_which_data_are_comparable() -> None:
    assert paper_comparability(schema("imported"), synthetic=False, split="test") == ""
    assert "synthetic" in paper_comparability(schema("imported"), synthetic=True, split="test")
    assert "valid split" in paper_comparability(schema("imported"), synthetic=False, split="valid")
    why = paper_comparability(schema("extracted"), synthetic=False, split="test")
    assert "audio features (opensmile-egemaps, 25-d)" in why and "CMU benchmark" in why
    mixed = schema("imported")
    mixed["text"] = {"dim": 768, "extractor": {"name": "import-mmsa", "parameters": {}}}
    assert "text features (import-mmsa, 768-d)" in paper_comparability(mixed, False, "test")


def _render(result: EvalResult) -> str:
    console = Console(width=400, record=True, markup=False)
    render_eval(result, console)
    return console.export_text()


def test_paper_columns_say_not_comparable_beside_the_rows() -> None:
    base = dict(
        checkpoint="runs/x/ckpt.pt", features="mine.h5", split="test", n=10, model="mea",
        dataset="mosi", task="regression", label_names=["sentiment"],
        metrics={"mae": 0.9}, baseline={"mae": 1.2}, synthetic=False, paper=paper_rows("mosi"),
    )  # fmt: skip
    custom = EvalResult(**base, not_comparable=paper_comparability(schema("extracted"), False, "test"))
    text = _render(custom)
    assert "MEA (paper, not comparable)" in text and "MFSA (paper, not comparable)" in text
    assert "not comparable with the papers' rows: the audio features (opensmile-egemaps, 25-d)" in text
    assert "mea on mine.h5 [test, 10 samples]" in text  # brackets survive
    as_json = custom.to_dict()
    assert as_json["paper_comparable"] is False and "25-d" in as_json["paper_not_comparable_because"]
    real = EvalResult(**base, not_comparable="")
    text = _render(real)
    assert "MEA (paper)" in text and "not comparable" not in text
    assert real.to_dict()["paper_comparable"] is True


def test_papers_cited_by_title_and_table_not_by_file() -> None:
    names = [f"{f}/{kind}_{m}.json" for m, f in FAMILY.items() for kind in ("paper", "ablation")]
    for name in names:
        path = resources.files("mea_cli.models").joinpath(name)
        if name.startswith("mult/ablation"):
            assert not path.is_file()  # MulT's paper has no ablation table of ours to show
            continue
        text = path.read_text("utf-8")
        assert ".md" not in text and "/work" not in text and "papers/" not in text, name
    rows = {d: paper_rows(d) for d in ("mosi", "mosei", "iemocap")}
    titles = {
        "MEA": "Asynchronous Multimodal Video Sequence Fusion via Learning Modality-Exclusive",
        "MFSA": "Learning Modality-Specific and -Agnostic Representations",
        "MCR": "Target and Source Modality Co-Reinforcement",
        "FDMER": "Disentangled Representation Learning for Multimodal Emotion Recognition",
    }
    titles["MulT"] = titles["MEA"]  # MulT's rows are the ones MEA's Tables II-IV print
    for dataset in ("mosi", "mosei", "iemocap"):
        for row in rows[dataset]:
            assert titles[row["model"]] in row["source"] and "Table" in row["source"], row
