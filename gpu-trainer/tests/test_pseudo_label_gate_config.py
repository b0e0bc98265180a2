import math

import numpy as np
import pytest
import torch
from pipeline_trainer.config import ConfigError, load_config
from pipeline_trainer.data import holdout_split
from pipeline_trainer.evaluate import collapse_stats, is_collapsed, knn_accuracy
from pipeline_trainer.gate import GatePolicy, decide, mcnemar_worse_p, paired_bootstrap
from pipeline_trainer.optim import warmup_cosine
from pipeline_trainer.pseudo_label import accuracy_and_coverage, class_thresholds, predict, select, train_classifier


def test_flexmatch_lowers_the_threshold_of_a_class_the_model_is_unsure_about():
    # 90 confident predictions of class 0, 2 of class 1, and 8 unsure images.
    probs = torch.cat([torch.tensor([[0.99, 0.01]]).repeat(90, 1), torch.tensor([[0.01, 0.99]]).repeat(2, 1), torch.tensor([[0.4, 0.6]]).repeat(8, 1)])
    t = class_thresholds(probs, tau=0.95, floor=0.0)
    assert t[0] == pytest.approx(0.95 * 1 / (2 - 1))
    beta1 = 2 / 90
    assert t[1] == pytest.approx(0.95 * beta1 / (2 - beta1))
    assert t[1] < t[0]
    assert class_thresholds(probs, tau=0.95)[1] == pytest.approx(0.95 * 0.5)
    assert torch.equal(class_thresholds(probs, 0.95, per_class=False), torch.full((2,), 0.95))


def test_warm_up_term_keeps_thresholds_low_while_most_images_are_unsure():
    probs = torch.full((100, 2), 0.5)
    probs[:5] = torch.tensor([0.99, 0.01])
    # 95 unsure images outnumber every class's confident count: thresholds stay low for all classes,
    # down to the floor.
    assert float(class_thresholds(probs, 0.95, floor=0.0).max()) < 0.05
    assert torch.allclose(class_thresholds(probs, 0.95), torch.full((2,), 0.475))


def test_select_accepts_per_class_and_scores_against_truth():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    chosen = select(probs, torch.tensor([0.8, 0.5]))
    assert chosen.accepted.tolist() == [True, False, True, True]
    acc, cov = accuracy_and_coverage(chosen, np.array([0, 0, 1, 0]))
    assert acc == pytest.approx(2 / 3) and cov == pytest.approx(0.75)


def test_classifier_and_knn_separate_separable_classes():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4, 16) * 3
    y = torch.arange(4).repeat(25)
    x = centres[y] + 0.3 * torch.randn(100, 16, generator=g)
    head = train_classifier(x[:60], y[:60], 4)
    assert float((predict(head, x[60:]).argmax(1) == y[60:]).float().mean()) > 0.95
    e = torch.nn.functional.normalize(x, dim=1)
    assert knn_accuracy(e[:60], y[:60], e[60:], y[60:], k=5) > 0.95


def test_collapse_check():
    g = torch.Generator().manual_seed(0)
    spread = torch.nn.functional.normalize(torch.randn(200, 32, generator=g), dim=1)
    collapsed = torch.nn.functional.normalize(torch.ones(200, 32) + 1e-4 * torch.randn(200, 32, generator=g), dim=1)
    assert not is_collapsed(collapse_stats(spread))
    assert is_collapsed(collapse_stats(collapsed))


def _paired(n: int, serving_acc: float, new_only: int, serving_only: int, seed: int = 0):
    """Per-image correctness of two encoders on the same n images: `new_only` images only the new one
    gets right, `serving_only` only the serving one, the rest as the serving one at serving_acc."""
    rng = np.random.default_rng(seed)
    serving = rng.random(n) < serving_acc
    new = serving.copy()
    right = np.flatnonzero(serving)
    wrong = np.flatnonzero(~serving)
    new[rng.choice(right, serving_only, replace=False)] = False
    new[rng.choice(wrong, new_only, replace=False)] = True
    return new, serving


SANE = {"finite": True, "collapsed": False, "effectiveRank": 20.0}


def _decide(new_c, serving_c, **policy):
    new = {**SANE, "correct": {m: new_c for m in ("knnAccuracy", "linearProbeAccuracy")}}
    serving = {**SANE, "correct": {m: serving_c for m in ("knnAccuracy", "linearProbeAccuracy")}}
    return decide(new, serving, GatePolicy(**policy))


def test_gate_rejects_a_clearly_worse_encoder_with_its_estimate_interval_and_sample_size():
    new, serving = _paired(200, 0.8, new_only=3, serving_only=25)
    d = _decide(new, serving)
    assert not d.passed
    assert d.rule == "paired test on 200 held-out labels at 95% confidence"
    c = d.comparisons[0]
    assert c["verdict"] == "worse" and c["n"] == 200 and c["newOnly"] == 3 and c["servingOnly"] == 25
    assert c["difference"] == pytest.approx(-0.11) and c["interval"][1] < 0 and c["pWorse"] < 0.05
    assert any("worse" in r and "on 200 held-out images" in r for r in d.reasons)


def test_gate_passes_a_difference_within_noise():
    # The case, at a larger scale: the new encoder loses a few images more than it wins.
    new, serving = _paired(40, 0.85, new_only=2, serving_only=4)
    d = _decide(new, serving)
    assert d.passed and d.comparisons[0]["verdict"] == "within noise"
    lo, hi = d.comparisons[0]["interval"]
    assert lo < 0 < hi


def test_gate_passes_and_says_so_when_clearly_better():
    new, serving = _paired(200, 0.6, new_only=30, serving_only=2)
    d = _decide(new, serving)
    assert d.passed and d.comparisons[0]["verdict"] == "better" and d.comparisons[0]["interval"][0] > 0


def test_gate_falls_back_to_label_free_checks_with_too_few_held_out_labels():
    # 8 held-out images, the serving encoder right on one more: the old gate rejected exactly this.
    new, serving = _paired(8, 0.875, new_only=0, serving_only=1)
    d = _decide(new, serving)
    assert d.passed and d.rule == "label-free: too few held-out labels"
    assert any("8 held-out labels: too few for the paired test" in r for r in d.reasons)
    low_rank = decide({**SANE, "effectiveRank": 4.0, "correct": {}}, {**SANE, "correct": {}}, GatePolicy())
    assert not low_rank.passed and any("effective rank 4.00 is under 0.5" in r for r in low_rank.reasons)


def test_gate_sanity_rules_and_the_first_encoder():
    new, serving = _paired(100, 0.8, 0, 0)
    assert not decide({**SANE, "collapsed": True, "correct": {}}, None).passed
    assert not decide({**SANE, "finite": False, "correct": {"knnAccuracy": new}}, {**SANE, "correct": {"knnAccuracy": serving}}).passed
    first = decide({**SANE, "correct": {}}, None)
    assert first.passed and first.rule == "sanity: first encoder" and "no serving encoder to compare against" in first.reasons


def test_mcnemar_and_bootstrap():
    assert mcnemar_worse_p(0, 0) == 1.0
    assert mcnemar_worse_p(0, 5) == pytest.approx(1 / 32)
    assert mcnemar_worse_p(5, 0) == 1.0
    assert mcnemar_worse_p(3, 3) == pytest.approx(sum(math.comb(6, k) for k in range(3, 7)) / 64)
    lo, hi = paired_bootstrap(np.ones(50, bool), np.zeros(50, bool), 0.95, 500, 0)
    assert lo == hi == 1.0


def test_holdout_is_seeded_per_class_and_disjoint():
    label_of = {row: row % 5 for row in range(50)}
    train, held = holdout_split(label_of, 0.2, seed=3)
    assert set(train).isdisjoint(held) and len(train) + len(held) == 50
    assert sorted(label_of[r] for r in held) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert holdout_split(label_of, 0.2, seed=3) == (train, held)
    assert holdout_split(label_of, 0.2, seed=4) != (train, held)


def test_config_precedence_and_unknown_keys(tmp_path):
    f = tmp_path / "cfg.json"
    f.write_text('{"batch_size": 64, "lr": 0.01}')
    cfg = load_config(str(f), ["lr=0.02"], env={"TRAINER_BATCH_SIZE": "128", "TRAINER_FINETUNE": "false"}, max_minutes=3)
    assert (cfg.batch_size, cfg.lr, cfg.finetune, cfg.max_minutes) == (128, 0.02, False, 3.0)
    with pytest.raises(ConfigError, match="unknown config key 'batchsize'"):
        load_config(None, ["batchsize=3"], env={})
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        load_config(None, [], env={"TRAINER_NOPE": "1"})
    with pytest.raises(ConfigError, match="batch_size: cannot use 'big'"):
        load_config(None, ["batch_size=big"], env={})
    with pytest.raises(ConfigError, match="temperature must be positive"):
        load_config(None, ["temperature=0"], env={})


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 0.0, 10, 1.0) == pytest.approx(0.1)
    assert warmup_cosine(9, 0.0, 10, 1.0) == pytest.approx(1.0)
    assert warmup_cosine(10, 0.0, 10, 1.0) == pytest.approx(1.0)
    assert warmup_cosine(50, 0.5, 10, 1.0) == pytest.approx(0.01 + 0.99 * 0.5)
    assert warmup_cosine(99, 1.0, 10, 1.0) == pytest.approx(0.01)


def test_without_warm_up_thresholds_follow_the_classes_own_confidence():
    probs = torch.full((100, 2), 0.5)
    probs[:5] = torch.tensor([0.99, 0.01])
    probs[5:7] = torch.tensor([0.01, 0.99])
    t = class_thresholds(probs, 0.95, warmup=False, floor=0.0)
    assert t[0] == pytest.approx(0.95)
    assert t[1] == pytest.approx(0.95 * 0.4 / 1.6)


def test_over_an_imported_encoder_a_lower_estimate_within_noise_keeps_the_import():
    import numpy as np
    from pipeline_trainer.gate import GatePolicy, decide

    rng = np.random.default_rng(0)
    serving = rng.random(40) < 0.85
    new = serving.copy()
    new[np.flatnonzero(serving)[:2]] = False  # two fewer right: within noise for the paired test
    base = {"finite": True, "collapsed": False, "effectiveRank": 10.0}
    correct = lambda c: {"knnAccuracy": c, "linearProbeAccuracy": c}  # noqa: E731
    lenient = decide({**base, "correct": correct(new)}, {**base, "correct": correct(serving)}, GatePolicy())
    assert lenient.passed and all(c["verdict"] == "within noise" for c in lenient.comparisons)
    strict = decide({**base, "correct": correct(new)}, {**base, "correct": correct(serving)}, GatePolicy(no_lower_estimate=True))
    assert not strict.passed
    assert "no lower estimate than an imported encoder" in strict.rule
    assert any("imported serving encoder's, which is kept" in r for r in strict.reasons)
    same = decide({**base, "correct": correct(serving)}, {**base, "correct": correct(serving)}, GatePolicy(no_lower_estimate=True))
    assert same.passed
