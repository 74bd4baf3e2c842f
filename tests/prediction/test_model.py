"""The prediction model on histories whose truth is known: a cost law with noise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from history_support import FRAMES, SIZES, STEPS, history, law, record

import genperf.prediction
from genperf.prediction import Workload, fit_history
from genperf.prediction.evaluate import holdout_accuracy
from genperf.prediction.model import observe
from genperf.records import TaskStatus


def test_held_out_configurations_are_predicted_within_the_aims():
    observations = [o for r in history(tiling=(False, True)) if (o := observe(r)) is not None]
    accuracy = holdout_accuracy(observations, folds=5)
    assert accuracy.unanswered == 0
    assert accuracy.model["generation_time_seconds"].median < 0.05
    assert accuracy.model["peak_ram_mb"].median < 0.02
    # and far better than a table of means per resolution class
    assert (
        accuracy.model["generation_time_seconds"].median * 5
        < accuracy.baseline["generation_time_seconds"].median
    )


def test_a_prediction_has_phases_peaks_and_intervals_that_hold_the_truth():
    model = fit_history(history(), "tiny-wan-t2v")
    w = Workload(320, 192, 13, 6)  # inside the range, never run
    p = model.predict(w.resolution, w.frames, w.steps)
    truth = law(w, tiling=False)
    assert p.answerable, p.reasons
    assert p.optimizations == ()  # attention:sdpa is the environment, not a choice
    t = p.generation_time_seconds
    total = truth["text_encode"] + truth["denoise"] + truth["vae_decode"] + 0.005
    assert t.low <= total <= t.high
    assert t.value == pytest.approx(total, rel=0.05)
    assert p.phases["denoise"].value == pytest.approx(truth["denoise"], rel=0.05)
    assert p.phases["vae_decode"].value == pytest.approx(truth["vae_decode"], rel=0.05)
    assert p.peak_ram_mb.low <= truth["ram"] <= p.peak_ram_mb.high
    assert p.peak_vram_mb is None  # never measured on this (CPU) history
    assert p.tasks == len(SIZES) * len(FRAMES) * len(STEPS) * 2
    assert p.configurations == len(SIZES) * len(FRAMES) * len(STEPS)


def test_each_optimisation_set_is_its_own_curve():
    model = fit_history(history(tiling=(False, True)), "tiny-wan-t2v")
    plain = model.predict("384x256", 17, 4, [])
    tiled = model.predict("384x256", 17, 4, ["vae_tiling"])
    assert tiled.peak_ram_mb.value < plain.peak_ram_mb.value
    assert tiled.phases["vae_decode"].value > plain.phases["vae_decode"].value


def test_vae_tiling_decodes_its_overlapping_tiles():
    # diffusers' Wan VAE: 256-pixel tiles every 192 once a side is past 256 pixels.
    assert Workload(256, 256, 9, 2).tiled_frame_pixels == 9 * 256 * 256  # one tile
    assert Workload(384, 256, 9, 2).tiled_frame_pixels == 9 * (256 + 192) * (256 + 64)


def test_a_tiled_size_past_every_size_in_the_history_follows_the_tile_geometry():
    """Sizes of one tile only in the history, the request split into tiles: a fit on frames
    x pixels would miss the overlaps' extra decode (a third slower here)."""
    small = tuple(s for s in SIZES if max(s) <= 256)
    model = fit_history(history(tiling=(True,), sizes=small), "tiny-wan-t2v")
    w = Workload(384, 256, 17, 4)
    p = model.predict(w.resolution, w.frames, w.steps, ["vae_tiling"])
    truth = law(w, tiling=True)
    assert p.phases["vae_decode"].value == pytest.approx(truth["vae_decode"], rel=0.05)


def test_too_thin_a_history_says_so_and_which_runs_would_answer():
    records = history(repeats=1, sizes=((64, 64),), frames=(5,), steps=(2, 4))
    p = fit_history(records, "tiny-wan-t2v").predict("128x128", 9, 4)
    assert not p.answerable
    assert p.generation_time_seconds is None and p.peak_ram_mb is None and not p.phases
    assert any("2 configuration(s)" in r and "at least 6" in r for r in p.reasons)
    assert p.suggested_runs
    assert p.suggested_runs[0].resolution == "128x128"  # the request itself first
    ran = {(r.resolution, r.frames, r.steps) for r in records}
    assert not {(s.resolution, s.frames, s.steps) for s in p.suggested_runs} & ran


def test_no_history_and_unknown_optimisation_sets_are_not_guessed():
    empty = fit_history([], "t2v-A14B").predict("1280x720", 81, 40)
    assert not empty.answerable
    assert empty.reasons == ("no completed run of t2v-A14B in the history",)
    model = fit_history(history(), "tiny-wan-t2v")
    offload = model.predict("128x128", 9, 4, ["offload:model"])
    assert not offload.answerable
    assert "offload:model" in offload.reasons[0]
    assert offload.suggested_runs[0].optimizations == ("offload:model",)


@pytest.mark.parametrize(
    ("resolution", "frames", "steps", "why"),
    [
        ("128x128", 9, 40, "steps 40 is far outside"),
        ("1280x720", 81, 4, "latent tokens"),
    ],
)
def test_far_outside_the_history_is_refused(resolution, frames, steps, why):
    p = fit_history(history(), "tiny-wan-t2v").predict(resolution, frames, steps)
    assert not p.answerable
    assert any(why in r for r in p.reasons)


def test_a_dimension_the_history_never_varied_is_not_extrapolated():
    records = history(steps=(4,))
    model = fit_history(records, "tiny-wan-t2v")
    assert model.predict("128x128", 9, 4).answerable
    p = model.predict("128x128", 9, 5)
    assert not p.answerable
    assert any("same steps" in r for r in p.reasons)


def test_failed_runs_and_unknown_shapes_teach_nothing():
    good = history(repeats=1)
    bad = [
        record(Workload(128, 128, 9, 4), status=TaskStatus.FAILED, generation_time_seconds=99.0),
        record(Workload(128, 128, 9, 4), resolution="720p"),
        record(Workload(128, 128, 9, 4), frames=None),
    ]
    assert fit_history(good + bad, "m").tasks == len(good)


@pytest.mark.parametrize(
    ("args", "match"),
    [(("720p", 9, 4), "WIDTHxHEIGHT"), (("64x64", 0, 4), "frames"), (("64x64", 9, 0), "steps")],
)
def test_bad_questions_are_refused_naming_the_field(args, match):
    with pytest.raises(ValueError, match=match):
        fit_history(history(repeats=1), "m").predict(*args)


def test_the_prediction_package_does_no_io():
    """Pure like analysis/: no files, network, databases or frameworks."""
    banned = {"sqlalchemy", "psutil", "fastapi", "typer", "rich", "httpx", "torch", "socket", "os"}
    for path in Path(genperf.prediction.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"
                assert not name.startswith(("genperf.storage", "genperf.monitor")), path.name
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                pytest.fail(f"{path.name} opens a file")
