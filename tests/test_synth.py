"""``mea synth``: deterministic, asynchronous, labelled by a rule that needs several modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.synth import SPECS, generate, label_from_latent, write_synthetic


def test_same_seed_same_file_other_seed_other_data(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{k}.h5" for k in "abc")
    write_synthetic(a, "mosi", n=20, seed=1, max_seconds=4)
    write_synthetic(b, "mosi", n=20, seed=1, max_seconds=4)
    write_synthetic(c, "mosi", n=20, seed=2, max_seconds=4)
    with FeatureStore(a) as sa, FeatureStore(b) as sb, FeatureStore(c) as sc:
        for m in ("text", "vision", "audio"):
            np.testing.assert_array_equal(sa.array(m)[0], sb.array(m)[0])
        np.testing.assert_array_equal(sa.samples.label, sb.samples.label)
        assert not np.array_equal(sa.samples.label, sc.samples.label)


@pytest.mark.parametrize("like", sorted(SPECS))
def test_benchmark_shape_and_metadata(tmp_path: Path, like: str) -> None:
    path = tmp_path / f"{like}.h5"
    write_synthetic(path, like, n=30, seed=0)
    spec = SPECS[like]
    with FeatureStore(path) as st:
        assert st.meta.synthetic and st.meta.dataset == f"synth-{like}"
        assert st.meta.task == spec.task and st.meta.label_names == spec.label_names
        assert [st.modalities[m].dim for m in ("text", "vision", "audio")] == list(spec.dims)
        assert set(st.samples.split) == {"train", "valid", "test"}
        for k, m in enumerate(("text", "vision", "audio")):
            lengths = st.lengths(m)
            assert lengths.max() <= spec.max_len[k]
            assert len(set(lengths.tolist())) > 5, "lengths must vary"
        # asynchronous: the modalities of one sample have different lengths and native rates
        s = st[0]
        assert len({len(s.features[m]) for m in s.features}) == 3
        dv = np.diff(s.times["vision"][:, 0])
        np.testing.assert_allclose(dv, 1 / spec.vision_hz)
        if spec.task == "binary-multilabel":
            np.testing.assert_array_equal(st.samples.label.sum(1), 1.0)


def test_labels_follow_the_rule_and_need_several_modalities() -> None:
    spec = SPECS["mosi"]
    rows = list(generate("mosi", n=600, seed=5, max_seconds=4))
    y = np.array([s.label[0] for s, _ in rows])
    z = [lat for _, lat in rows]
    for s, lat in rows[:50]:
        np.testing.assert_array_equal(s.label, label_from_latent(spec, lat))
    p = np.array([[lat.polarity] for lat in z], float)
    a = np.array([[lat.arousal] for lat in z], float)
    pa = np.hstack([p, p * a, [[lat.expression] for lat in z]])

    def r2(x: np.ndarray) -> float:
        return LinearRegression().fit(x, y).score(x, y)

    assert r2(a) < 0.05  # audio alone: magnitude without sign
    assert r2(p) < 0.9  # text alone: sign without magnitude
    assert r2(pa) > 0.99  # together: the whole answer


def test_negation_flips_only_when_it_comes_first() -> None:
    """The text sentiment depends on word order: NOT before the sentiment word flips it."""
    rows = list(generate("mosi", n=400, seed=7, max_seconds=4))
    lat = [z for _, z in rows]
    before = [z for z in lat if 0 <= z.negation_pos < z.sentiment_pos]
    after = [z for z in lat if z.negation_pos > z.sentiment_pos]
    assert before and after
    # The sentiment word's vector is the same for equal sign; the sign of p differs by order.
    for s, z in rows:
        w = s.features["text"][z.sentiment_pos]
        assert np.abs(w).mean() > 0.5
    assert {z.polarity for z in before} == {-1, 1} and {z.polarity for z in after} == {-1, 1}


def test_audio_burst_carries_the_arousal() -> None:
    rows = list(generate("mosi", n=200, seed=9, max_seconds=4))
    peak = np.array([s.features["audio"][:, :10].mean(1).max() for s, _ in rows])
    arousal = np.array([z.arousal for _, z in rows])
    assert np.corrcoef(peak, arousal)[0, 1] > 0.8


@pytest.mark.parametrize("seconds", ["inf", "nan", "1"])
def test_max_seconds_not_a_finite_number_of_at_least_2_is_refused(tmp_path: Path, mea, seconds) -> None:
    """``--max-seconds inf`` passed the option's lower bound and ended in numpy's OverflowError
    (a traceback, exit 1); nothing may be written."""
    code, _, err = mea("synth", "--out", str(tmp_path / "s.h5"), "--n", "3", "--max-seconds", seconds)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "max" in err and list(tmp_path.iterdir()) == []


def test_bursts_sit_at_their_latent_times() -> None:
    """The audio burst (channels 0-9) and the vision burst (smile 0-4, frown 5-9) peak at the
    latent event times, each in its own modality's clock; no vision burst without expression."""
    for s, z in generate("mosi", n=40, seed=3, max_seconds=6):
        if z.arousal > 0.5:  # a burst of 3a >= 1.5 over unit noise, averaged over 10 channels
            audio = s.features["audio"][:, :10].mean(1)
            peak = s.times["audio"][int(np.argmax(audio)), 0]
            assert abs(peak - z.audio_event_s) < 0.25, (s.id, peak, z.audio_event_s)
        vision = s.features["vision"]
        smile, frown = vision[:, :5].mean(1), vision[:, 5:10].mean(1)
        if z.expression:
            burst = smile if z.expression > 0 else frown
            peak = s.times["vision"][int(np.argmax(burst)), 0]
            assert abs(peak - z.vision_event_s) < 0.25, (s.id, peak, z.vision_event_s)
        else:
            assert max(smile.max(), frown.max()) < 2.0  # noise only: no 2.5-high bump
