"Training integration: the real BreakHis sample end to end, reloading a run, and the plateau schedule."
import json
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image
from bcc_nb.train import train_classifier
from bcc_nb.runs import load_run, load_model_files
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
    assert meta['head'] == 'fastai' and meta['stain_normalize']['method'] == 'reinhard' and meta['stain_normalize']['target'] == target.name
    assert set(meta['stain_normalize']['reference']) == {'target_means', 'target_stds'}   # numbers, not a path to read
    assert 'StainNormalize' in [type(t).__name__ for t in learn.dls.valid.after_item.fs]  # validation is normalised too
    with learn.no_bar(): p1, _ = learn.get_preds(dl=learn.dls.valid)
    learn2 = load_run(out)
    with learn2.no_bar(): p2, _ = learn2.get_preds(dl=learn2.dls.valid)
    assert torch.allclose(p1, p2, atol=1e-5)

def test_reinhard_needs_a_target(tiny_demo, tmp_path):
    import pytest
    with pytest.raises(ValueError, match='reinhard stain normalisation needs a reference image'):
        train_classifier(tiny_demo, out=tmp_path/'x', size=32, epochs=1, stain_normalize='reinhard', quiet=True)
    assert not (tmp_path/'x').exists()

def test_macenko_without_a_target_uses_the_standard_reference(tiny_demo, tmp_path):
    "No image to choose: the run records the standard H&E reference, and a reload normalises and predicts the same."
    from bcc_nb.augment import MACENKO_REFERENCE
    out = tmp_path/'mac'
    learn = train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=1, quiet=True, stain_normalize='macenko')
    meta = json.loads((out/'model.json').read_text())
    assert meta['stain_normalize'] == dict(method='macenko', reference=MACENKO_REFERENCE, target=None)
    cache = Path(json.loads((out/'config.json').read_text())['cache_dir'])   # normalised once, into the cache, and marked
    copies = list(cache.glob('*_macenko-*/*.png'))
    assert copies and all(Image.open(c).info.get('bcc_stain', '').startswith('macenko-') for c in copies), copies
    with learn.no_bar(): p1, _ = learn.get_preds(dl=learn.dls.valid)
    learn2 = load_run(out)
    assert 'StainNormalize' in [type(t).__name__ for t in learn2.dls.valid.after_item.fs]
    with learn2.no_bar(): p2, _ = learn2.get_preds(dl=learn2.dls.valid)
    assert torch.allclose(p1, p2, atol=1e-5)


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

def test_same_seed_same_history(tiny_demo, tmp_path):
    "Two CPU runs with one seed: identical losses and metrics, epoch by epoch, and identical weights."
    hs = []
    for i in range(2):
        train_classifier(tiny_demo, out=tmp_path/f'r{i}', size=32, bs=4, epochs=2, seed=7, quiet=True)
        hs.append(pd.read_csv(tmp_path/f'r{i}'/'history.csv').drop(columns='time'))
    pd.testing.assert_frame_equal(hs[0], hs[1], check_exact=True)
    from safetensors.torch import load_file
    w0, w1 = (load_file(str(tmp_path/f'r{i}'/'model.safetensors')) for i in range(2))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    train_classifier(tiny_demo, out=tmp_path/'r_other', size=32, bs=4, epochs=2, seed=8, quiet=True)
    other = pd.read_csv(tmp_path/'r_other'/'history.csv').drop(columns='time')
    assert not other.train_loss.equals(hs[0].train_loss)   # and the seed matters

def test_speed_defaults_keep_the_numbers(tiny_demo, tmp_path):
    """The default speed levers change no result. The resized-copy cache trains to the identical history. Channels-last
    computes the same steps to float rounding (checked with the weights held still: with Adam, rounding-level differences
    grow into different trajectories, exactly as they do between 1 and 2 CPU threads in the plain layout)."""
    def hist(name, **kw):
        learn = train_classifier(tiny_demo, out=tmp_path/name, size=32, bs=4, epochs=2, seed=7, quiet=True, **kw)
        assert learn.config['channels_last'] == kw.get('channels_last', True)
        assert bool(learn.config['cache_dir']) == (kw.get('cache') is not False)
        return pd.read_csv(tmp_path/name/'history.csv').drop(columns='time')
    pd.testing.assert_frame_equal(hist('default'), hist('no_cache', cache=False), check_exact=True)
    still = dict(lr=1e-12, cache=False)
    pd.testing.assert_frame_equal(hist('cl', **still), hist('plain', channels_last=False, **still), check_exact=False, rtol=1e-5)

def _conv_watch():
    "A callback recording, for each training epoch fastai runs, (epoch, whether the body's convolutions train)."
    from fastai.vision.all import Callback
    from torch import nn
    class Watch(Callback):
        order = 100
        def before_fit(self): self.epochs = []
        def after_train(self):
            self.epochs.append((self.epoch, any(p.requires_grad for m in self.model[0].modules() if isinstance(m, nn.Conv2d) for p in m.parameters())))
    return Watch()

def test_fine_tune_trains_the_head_first(tiny_demo, tmp_path):
    "With 'fine_tune' the convolutions are frozen for `freeze_epochs`, then everything trains, in one fit."
    w = _conv_watch()
    learn = train_classifier(tiny_demo, out=tmp_path/'ft', size=32, bs=4, epochs=3, schedule='fine_tune', freeze_epochs=1,
                             quiet=True, cbs=[w])
    assert w.epochs == [(0, False), (1, True), (2, True)]
    assert len(pd.read_csv(tmp_path/'ft'/'history.csv')) == 3 and learn.config['schedule'] == 'fine_tune'

def test_schedule_auto_picks_fine_tune_only_with_imagenet_weights(tiny_demo, tmp_path):
    "No ImageNet weights here: 'auto' trains everything with one-cycle; a local weights file means fine_tune."
    import torchvision
    learn = train_classifier(tiny_demo, out=tmp_path/'a', arch='resnet18', size=32, bs=4, epochs=2, quiet=True, pretrained=False)
    assert learn.config['schedule'] == 'one_cycle'
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path/'r18.pth')
    learn = train_classifier(tiny_demo, out=tmp_path/'b', arch='resnet18', weights=tmp_path/'r18.pth', size=32, bs=4,
                             epochs=2, quiet=True)
    assert learn.config['schedule'] == 'fine_tune' and learn.config['freeze_epochs'] == 1

def test_balance_options_and_label_smoothing(tiny_demo, tmp_path):
    from bcc_nb.train import class_weights
    from fastai.vision.all import WeightedDL
    learn = train_classifier(tiny_demo, out=tmp_path/'w', size=32, bs=4, epochs=1, balance='weights', label_smoothing=0.1, quiet=True)
    lf = learn.loss_func.func
    assert torch.allclose(lf.weight.cpu(), class_weights(learn.dls)) and lf.label_smoothing == 0.1
    learn = train_classifier(tiny_demo, out=tmp_path/'s', size=32, bs=4, epochs=1, balance='sampler', quiet=True)
    assert isinstance(learn.dls.train, WeightedDL) and learn.config['balance'] == 'sampler'
    learn = train_classifier(tiny_demo, out=tmp_path/'p', size=32, bs=4, epochs=1, balance='patients', quiet=True)
    cases = learn.dls.train_ds.items.case.values
    per_patient = {c: learn.dls.train.wgts[cases == c].sum() for c in set(cases)}   # equal within each class
    labels = {c: learn.dls.train_ds.items.label.values[cases == c][0] for c in per_patient}
    for lbl in set(labels.values()):
        shares = [w for c, w in per_patient.items() if labels[c] == lbl]
        assert np.allclose(shares, 0.5/len(shares)), (lbl, shares)
    import pytest
    with pytest.raises(ValueError, match="balance must be"):
        train_classifier(tiny_demo, out=tmp_path/'x', size=32, bs=4, epochs=1, balance='oversample', quiet=True)

def test_resume_refuses_other_settings(tiny_demo, tmp_path):
    import pytest
    from bcc_nb.callbacks import InterruptAfter
    out = tmp_path/'r'
    with pytest.raises(KeyboardInterrupt):
        train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=3, quiet=True, cbs=[InterruptAfter(0)])
    with pytest.raises(ValueError, match='Cannot resume'):
        train_classifier(tiny_demo, out=out, size=32, bs=4, epochs=4, quiet=True, resume=True)
    with pytest.raises(FileNotFoundError, match='no interrupted run'):
        train_classifier(tiny_demo, out=tmp_path/'none', size=32, bs=4, epochs=3, quiet=True, resume=True)
    from bcc_nb.config import TrainConfig   # the settings given again in full, as `cross_validate` does: schedule 'auto' was saved as decided
    learn = train_classifier(tiny_demo, TrainConfig(size=32, bs=4, epochs=3), out=out, quiet=True, resume=True)
    assert list(pd.read_csv(out/'history.csv').epoch) == [0, 1, 2] and learn.config['best_epoch'] in (0, 1, 2)

def test_load_classifier_matches_the_learner_and_needs_no_pickle(tiny_demo, tmp_path):
    "The model files alone (no data, no pickle) give the learner's probabilities; the run folder holds no pickle."
    import shutil
    from bcc_nb.predict import load_classifier
    from bcc_nb.evaluate import patch_probs
    out = tmp_path/'run'
    learn = train_classifier(tiny_demo, out=out, size=48, bs=4, epochs=1, quiet=True)
    assert not [f for f in out.rglob('*') if f.suffix in ('.pkl', '.pth', '.pt', '.bin')]
    alone = tmp_path/'alone'; alone.mkdir()
    for f in ('model.json', 'model.safetensors'): shutil.copy(out/f, alone/f)
    p_learn = patch_probs(learn, learn.dls.valid_ds.items)   # the default patch view: each image's mean over its grid of patches
    preds = load_classifier(alone, device='cpu').predict(list(learn.dls.valid_ds.items.path))
    assert np.allclose(preds[['prob_benign', 'prob_malignant']].values, p_learn, atol=1e-4)

def test_cached_head_replaces_the_frozen_epochs(tiny_demo, tmp_path):
    "cached_head: the frozen epoch trains the head on features computed once; the unfrozen epochs follow in the same history."
    w = _conv_watch()
    learn = train_classifier(tiny_demo, out=tmp_path/'ch', arch='resnet18', size=32, bs=4, epochs=3, schedule='fine_tune',
                             cached_head=True, head_views=2, quiet=True, cbs=[w])
    assert w.epochs == [(1, True), (2, True)]   # epoch 0 ran on cached features, outside fastai's loop
    h = pd.read_csv(tmp_path/'ch'/'history.csv')
    assert list(h.epoch) == [0, 1, 2] and h.notna().all().all()
    assert learn.config['cached_head'] is True and learn.config['best_epoch'] in (0, 1, 2)
    assert (tmp_path/'ch'/'model.safetensors').exists() and not (tmp_path/'ch'/'checkpoints').exists()

def test_a_run_folder_of_bcc_nb_0_0_1_still_loads(tmp_path):
    """A run written by bcc_nb 0.0.1 (tests/fixtures/run_v0.0.1: model.json format 1, no checksums, no run.json; a tiny
    timm network) loads, predicts what 0.0.1 predicted with its saved threshold, reloads with data, and can be replaced."""
    import shutil
    from bcc_nb.demo import make_demo_data
    from bcc_nb.predict import load_classifier
    from bcc_nb.runs import RunFolder
    fixtures = Path(__file__).parent/'fixtures'
    run = Path(shutil.copytree(fixtures/'run_v0.0.1', tmp_path/'run'))
    demo = make_demo_data(tmp_path/'demo', 6, 4, size=(175, 115))   # the images 0.0.1 predicted (same seed, same bytes)
    expected = pd.read_csv(fixtures/'run_v0.0.1_predictions.csv').set_index('file')
    got = load_classifier(run, device='cpu').predict(demo)
    got = got.assign(file=[Path(f).name for f in got.file]).set_index('file').loc[expected.index]
    assert np.allclose(got.prob_malignant, expected.prob_malignant, atol=1e-5) and (got.label == expected.label).all()
    learn = load_run(run, data=demo)
    assert learn.cfg.arch == 'test_efficientnet' and learn.meta['format'] == 'bcc_nb-model/1' and len(learn.dls.valid_ds) > 0
    assert RunFolder(run).state() == 'run' and 'model.safetensors' in RunFolder(run).written()
    (run/'my_notes.txt').write_text('mine')
    train_classifier(demo, out=run, overwrite=True, arch='resnet18', size=32, bs=4, epochs=1, quiet=True)
    assert json.loads((run/'model.json').read_text())['format'] == 'bcc_nb-model/2' and (run/'my_notes.txt').read_text() == 'mine'

def test_patches_and_whole_field_end_to_end(tiny_demo, tmp_path):
    "field='patches': trained on random patches, evaluated and predicted on the mean over each image's grid of patches; field='whole' too."
    from bcc_nb.runs import RunFolder
    from bcc_nb.evaluate import evaluate_run
    from bcc_nb.predict import load_classifier
    out = tmp_path/'p'
    learn = train_classifier(tiny_demo, out=out, arch='resnet18', size=32, bs=4, epochs=1, quiet=True)   # the default: patches
    meta = json.loads((out/'model.json').read_text())
    assert (meta['field'], meta['view'], meta['scale']) == ('patches', 1.8, None)
    clf = load_classifier(out, device='cpu')
    views, err = clf.views(Path(learn.dls.valid_ds.items.path.iloc[0]))
    assert err is None and len(views) == 3*2 and views[0].shape == (3, 32, 32)   # 175x115, shorter side to 1.8x32: 88x58, a 3x2 grid of 32s
    ev = evaluate_run(out, n_boot=20)
    preds = clf.predict(list(learn.dls.valid_ds.items.path))
    assert np.allclose(preds.prob_malignant.values, ev.probs[:, 1], atol=1e-4)   # evaluation and prediction average the same grid
    train_classifier(tiny_demo, out=tmp_path/'w', arch='resnet18', size=32, bs=4, epochs=1, field='whole', zoom_range=2., max_rotate=90.,
                     normalize=False, quiet=True)
    meta = json.loads((tmp_path/'w'/'model.json').read_text())
    assert meta['field'] == 'whole' and meta['normalize'] is None
    assert load_classifier(tmp_path/'w', device='cpu').predict(tiny_demo).error.isna().all()

def test_fused_adamw_trains_as_fastai_adam(tiny_demo):
    """The optimizer change (fastai's Adam computed by torch's fused AdamW) gives fastai's Adam in a real Learner.
    Compared on one step, not as a training history: a few steps of ResNet-18 on 32 px batches of 4 amplify rounding
    differences of 1e-8 into different histories (batch norm over 4 values), more on some CPUs than on others."""
    from fastai.vision.all import Adam, set_seed, Callback, CancelFitException
    from bcc_nb.loaders import image_dataloaders
    from bcc_nb.model import classifier_learner, TorchAdamW
    class StopAfterOneStep(Callback):
        def after_step(self): raise CancelFitException
    weights = {}
    for name, opt in (('fastai', Adam), ('fused', TorchAdamW)):   # one real step: the Learner's param groups, no decay on norms and biases, one-cycle's hypers
        set_seed(3, reproducible=True)
        learn = classifier_learner(image_dataloaders(tiny_demo, size=32, bs=4, seed=3), 'resnet18', pretrained=False, verbose=False, opt_func=opt)
        before = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3, cbs=StopAfterOneStep())
        weights[name] = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    assert (weights['fastai'] - before).abs().max() > 1e-5        # it did train (one-cycle's first step: lr 1e-3/25)
    assert torch.allclose(weights['fastai'], weights['fused'], atol=1e-7)
    # several steps with changing gradients and hypers, compared on a small net: 02_model's `steps` check

def test_mixup_blends_the_training_batches(tiny_demo, tmp_path, monkeypatch):
    import bcc_nb.train
    from fastai.vision.all import MixUp, CrossEntropyLossFlat
    lams = []
    class Recorded(MixUp):   # fastai's MixUp, noting the blend weights of every training batch
        def before_batch(self): super().before_batch(); lams.append(self.lam)
    monkeypatch.setattr(bcc_nb.train, 'MixUp', Recorded)
    learn = train_classifier(tiny_demo, out=tmp_path/'m', size=32, bs=4, epochs=1, mixup=0.4, quiet=True)
    assert learn.config['mixup'] == 0.4 and len(lams) == len(learn.dls.train)
    lam = torch.cat([l.flatten() for l in lams])
    assert bool(((lam >= 0.5) & (lam <= 1)).all()) and bool((lam < 0.99).any())   # blends, not the images themselves
    assert isinstance(learn.loss_func, CrossEntropyLossFlat)   # the plain loss is back for validation and prediction
    plain = train_classifier(tiny_demo, out=tmp_path/'p', size=32, bs=4, epochs=1, quiet=True)
    assert plain.config['mixup'] == 0 and len(lams) == len(learn.dls.train)   # off by default
