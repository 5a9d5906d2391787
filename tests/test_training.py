"Training integration: the real BreakHis sample end to end, reloading a run, and the plateau schedule."
import json
import numpy as np, pandas as pd, torch
from bcc_nb.train import train_classifier, load_run, load_model_files
from bcc_nb.evaluate import evaluate_learner

def test_real_data_train_evaluate(real_data, tmp_path):
    out = tmp_path/'real'
    learn = train_classifier(real_data, out=out, size=64, bs=16, epochs=1, quiet=True)
    ev = evaluate_learner(learn, history=out)
    assert ev.metrics['n_images'] == len(learn.dls.valid_ds) > 0
    assert all(0 <= ev.metrics[k] <= 1 for k in ('accuracy', 'roc_auc', 'f1'))
    config = json.loads((out/'config.json').read_text())
    assert not set(config['cases']['train']) & set(config['cases']['valid'])
    assert set(ev.predictions().case) == set(config['cases']['valid'])

def test_reloaded_run_predicts_like_the_learner(tiny_demo, tmp_path):
    out = tmp_path/'run'
    learn = train_classifier(tiny_demo, out=out, size=64, bs=4, epochs=1, quiet=True)
    with learn.no_bar(): p1, _ = learn.get_preds(dl=learn.dls.valid)
    learn2 = load_run(out)
    with learn2.no_bar(): p2, _ = learn2.get_preds(dl=learn2.dls.valid)
    assert torch.allclose(p1, p2, atol=1e-5)
    model, meta = load_model_files(out)
    assert meta['arch'] == 'densenet201' and not model.training

def test_plateau_schedule(tiny_demo, tmp_path):
    out = tmp_path/'plateau'
    train_classifier(tiny_demo, out=out, size=64, bs=4, epochs=2, lr=1e-4, schedule='plateau', quiet=True)
    assert len(pd.read_csv(out/'history.csv')) == 2
    assert json.loads((out/'config.json').read_text())['schedule'] == 'plateau'

def test_overwrite_drops_the_old_models_evaluation(tiny_demo, tmp_path):
    out = tmp_path/'run'
    learn = train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=1, quiet=True)
    evaluate_learner(learn, history=out).save(out)
    assert (out/'metrics.json').exists() and (out/'roc_curve.png').exists()
    train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=1, quiet=True, overwrite=True)
    assert not (out/'metrics.json').exists() and not list(out.glob('*.png'))  # stale: they described the old model
    assert (out/'model.safetensors').exists() and (out/'history.csv').exists()

def test_run_from_a_dataframe_reloads_from_its_manifest(tiny_demo, tmp_path):
    from bcc_nb.data import breakhis_manifest
    table = breakhis_manifest(tiny_demo)[['path', 'label', 'case']]
    out = tmp_path/'df_run'
    learn = train_classifier(table, out=out, size=32, bs=4, epochs=1, quiet=True)
    assert json.loads((out/'config.json').read_text())['data'] is None
    saved = pd.read_csv(out/'manifest.csv', dtype={'case': str})
    assert len(saved) == 24 and set(saved.split) == {'train', 'valid'} and saved.md5.notna().all()
    learn2 = load_run(out)  # no data argument: the run's own manifest.csv
    assert list(learn2.dls.valid_ds.items.path) == list(learn.dls.valid_ds.items.path)

def test_fastai_head_stain_normalisation_and_jitter_round_trip(tiny_demo, tmp_path):
    "The options of issue 4 are recorded in the run and rebuilt by load_run: same predictions after reload."
    out = tmp_path/'opts'
    target = sorted(tiny_demo.rglob('*.png'))[0]
    learn = train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=1, quiet=True, head='fastai',
                             stain_normalize='reinhard', stain_target=target, hed_sigma=0.2, max_zoom=1.0)
    meta = json.loads((out/'model.json').read_text())
    assert meta['head'] == 'fastai' and meta['stain_normalize'] == {'method': 'reinhard', 'target': str(target.resolve())}
    assert 'StainNormalize' in [type(t).__name__ for t in learn.dls.valid.after_item.fs]  # validation is normalised too
    with learn.no_bar(): p1, _ = learn.get_preds(dl=learn.dls.valid)
    learn2 = load_run(out)
    with learn2.no_bar(): p2, _ = learn2.get_preds(dl=learn2.dls.valid)
    assert torch.allclose(p1, p2, atol=1e-5)

def test_stain_normalize_needs_a_target(tiny_demo, tmp_path):
    import pytest
    with pytest.raises(ValueError, match='needs a reference image'):
        train_classifier(tiny_demo, out=tmp_path/'x', size=32, epochs=1, stain_normalize='macenko', quiet=True)


def test_patient_bootstrap_resamples_whole_patients():
    "Four patients of 10 identical-outcome images: resampling patients can only give accuracies in quarters."
    from bcc_nb.evaluate import patient_bootstrap
    y = np.repeat([0, 1, 0, 1], 10)
    right = np.repeat([True, True, False, True], 10)
    p_mal = np.where(right, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.1, 0.9))
    groups = np.repeat(list('ABCD'), 10)
    ci = patient_bootstrap(y, np.stack([1-p_mal, p_mal], 1), groups, ['benign', 'malignant'], n_boot=300, level=0.9)
    for v in ci['accuracy']: assert min(abs(v - q) for q in (0, 0.25, 0.5, 0.75, 1)) < 1e-9, ci['accuracy']
    assert ci['accuracy'][0] < 0.75 < ci['accuracy'][1] + 1e-9

def test_threshold_rule_meets_its_sensitivity():
    from bcc_nb.evaluate import choose_threshold
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3*y + rng.normal(0.35, 0.2, 400), 0, 1)
    for target in (0.8, 0.9, 0.95, 0.99):
        op = choose_threshold(y, p, 'sensitivity', target)
        assert ((p >= op['threshold'])[y == 1]).mean() >= target
        assert op['sensitivity'] >= target

def test_evaluation_without_patient_ids_warns_and_resamples_images():
    from bcc_nb.evaluate import Evaluation
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 20)
    p = np.clip(0.5*y + rng.normal(0.25, 0.2, 40), 0, 1)
    items = pd.DataFrame({'path': [f'img{i}.png' for i in range(40)]})  # a folder layout: no `case` column
    import pytest
    with pytest.warns(UserWarning, match='No patient ids'):
        ev = Evaluation(y, np.stack([1-p, p], 1), ['benign', 'malignant'], items, n_boot=200)
    assert ev.ci_unit == 'images' and ev.to_dict()['ci_resampling'] == 'images' and not ev.patient
    lo, hi = ev.ci['roc_auc']
    assert lo < ev.metrics['roc_auc'] < hi
