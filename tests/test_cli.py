"End-to-end tests of the `bcc-*` commands, run as a user runs them: as separate processes."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from fastcore.docments import docments
from bcc_nb.demo import bcc_demo_data
from bcc_nb.train import bcc_train
from bcc_nb.evaluate import bcc_evaluate
from bcc_nb.predict import bcc_predict
from bcc_nb.crossval import bcc_cv

def run(*args, cwd=None):
    return subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=900)

@pytest.mark.parametrize('cmd,func', [('bcc-train', bcc_train), ('bcc-evaluate', bcc_evaluate), ('bcc-demo-data', bcc_demo_data),
                                      ('bcc-predict', bcc_predict), ('bcc-cv', bcc_cv)])
def test_help_documents_every_option(cmd, func):
    r = run(cmd, '--help')
    assert r.returncode == 0, r.stderr
    help_text = ' '.join(r.stdout.split())
    for name, doc in docments(func).items():
        if name == 'return': continue
        assert doc, f"{cmd}: parameter {name} has no docment"
        opt = name.replace('_', '-')
        assert f"--{opt} " in help_text or f"--no-{opt} " in help_text or f" {name} " in help_text, f"{cmd} --help does not list {name}"
        assert ''.join(doc.split()) in ''.join(help_text.split()), f"{cmd} --help does not explain {name}"   # argparse may wrap at a hyphen

@pytest.fixture(scope='module')
def trained_run(tiny_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')/'tiny'
    r = run('bcc-train', str(tiny_demo), '--out', str(out), '--size', '64', '--bs', '4', '--epochs', '1', '--quiet')
    assert r.returncode == 0, r.stderr
    return out, r

def test_train_writes_run_folder(trained_run):
    out, r = trained_run
    assert {'config.json', 'history.csv', 'model.json', 'model.safetensors', 'run.json'} <= {p.name for p in out.iterdir()}
    assert not (out/'checkpoints').exists() and not [p for p in out.parent.iterdir() if p.name.endswith('.bcc-partial')]
    assert 'Run folder:' in r.stdout and 'roc_auc_score' in r.stdout
    hist = pd.read_csv(out/'history.csv')
    assert len(hist) == 1 and hist.train_loss.notna().all()
    assert 0 <= hist.accuracy.iloc[0] <= 1 and 0 <= hist.roc_auc_score.iloc[0] <= 1
    config = json.loads((out/'config.json').read_text())
    assert config['epochs'] == 1 and config['size'] == 64 and config['arch'] == 'densenet201'
    assert config['cases']['valid'] and not set(config['cases']['train']) & set(config['cases']['valid'])
    assert config['cache'] is True and config['cache_dir'] == os.environ['BCC_NB_CACHE']   # resized copies by default
    # the default patch view of 64 px patches (shorter side 1.8 x 64), stain-normalised once: both steps name the folder
    assert len(list(Path(config['cache_dir']).glob('115_macenko-*/*.png'))) >= 24
    meta = json.loads((out/'model.json').read_text())
    assert meta['classes'] == ['benign', 'malignant'] and meta['size'] == 64
    assert config['stain_normalize'] == 'macenko' and meta['stain_normalize']['method'] == 'macenko'   # on by default, recorded for prediction

def test_evaluate_writes_metrics_and_plots(trained_run):
    out, _ = trained_run
    r = run('bcc-evaluate', str(out), '--tta', '--n-boot', '100')
    assert r.returncode == 0, r.stderr
    pngs = ('confusion_matrix.png', 'roc_curve.png', 'pr_curve.png', 'calibration.png', 'history.png', 'gradcam.png')
    for f in ('metrics.json', 'predictions.csv', 'report.html') + pngs:
        assert (out/f).stat().st_size > 0, f
        if f.endswith('.png'): assert (out/f).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    report = (out/'report.html').read_text()
    assert (out/'top_correct.png').exists() or (out/'top_errors.png').exists()  # galleries of confident calls
    assert report.count('data:image/png;base64,') == len(list(out.glob('*.png'))) >= 8  # every figure, embedded
    assert 'roc_auc' in report and 'not for diagnosis' in report
    m = json.loads((out/'metrics.json').read_text())
    for k in ('accuracy', 'balanced_accuracy', 'precision', 'recall', 'specificity', 'f1', 'roc_auc', 'pr_auc', 'brier', 'ece'):
        assert 0 <= m[k] <= 1, (k, m[k])
        assert m['ci95'][k][0] <= m[k] + 1e-9 and m[k] <= m['ci95'][k][1] + 1e-9, k
        assert 0 <= m['tta'][k] <= 1
    assert m['patient']['n_patients'] == len(json.loads((out/'config.json').read_text())['cases']['valid'])
    assert json.loads((out/'model.json').read_text())['threshold'] == m['operating_point']
    preds = pd.read_csv(out/'predictions.csv', dtype={'case': str})
    assert len(preds) == m['n_images'] and set(preds.case) == set(json.loads((out/'config.json').read_text())['cases']['valid'])
    assert ((preds.prob_benign + preds.prob_malignant - 1).abs() < 1e-4).all()
    pts = pd.read_csv(out/'patients.csv', dtype={'case': str}).set_index('case')
    assert len(pts) == m['patient']['n_patients'] and pts.n_images.sum() == len(preds)
    assert np.allclose(pts.prob_malignant, preds.groupby('case').prob_malignant.mean()[pts.index])

def test_train_refuses_to_overwrite_a_model(trained_run, tiny_demo):
    out, _ = trained_run
    before = (out/'model.safetensors').read_bytes()
    r = run('bcc-train', str(tiny_demo), '--out', str(out), '--size', '64', '--epochs', '1', '--quiet')
    assert r.returncode != 0
    assert 'already holds a trained model' in r.stderr and '--overwrite' in r.stderr
    assert (out/'model.safetensors').read_bytes() == before

def test_train_missing_data_folder(tmp_path):
    r = run('bcc-train', str(tmp_path/'nope'), '--out', str(tmp_path/'run'))
    assert r.returncode != 0 and 'No such folder' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'run').exists()

def test_train_needs_data_or_demo(tmp_path):
    r = run('bcc-train', '--out', str(tmp_path/'run'))
    assert r.returncode != 0 and '--demo' in r.stderr

def test_evaluate_not_a_run_folder(tmp_path):
    r = run('bcc-evaluate', str(tmp_path))
    assert r.returncode != 0 and 'run folder' in r.stderr and 'Traceback' not in r.stderr

def test_demo_command(tmp_path):
    "The README's main job, `bcc-train --demo`, on the default demo set (kept short: 1 epoch, 64 px)."
    r = run('bcc-train', '--demo', '--epochs', '1', '--size', '64', '--out', 'runs/demo', '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path/'demo_data').rglob('*.png'))) == 240
    assert (tmp_path/'runs/demo/model.safetensors').exists()

def test_train_cli_magnification_and_folds(tiny_demo, tmp_path):
    out = tmp_path/'fold'
    r = run('bcc-train', str(tiny_demo), '--out', str(out), '--size', '32', '--bs', '4', '--epochs', '1',
            '--magnification', '100', '--folds', '3', '--fold', '2', '--no-cache', '--stain-normalize', 'none', '--quiet')
    assert r.returncode == 0, r.stderr
    config = json.loads((out/'config.json').read_text())
    assert (config['magnification'], config['folds'], config['fold'], config['task']) == ([100], 3, 2, 'binary')
    assert config['stain_normalize'] is None and json.loads((out/'model.json').read_text())['stain_normalize'] is None   # `none` turns it off
    assert config['cache'] is False and config['cache_dir'] is None
    r = run('bcc-evaluate', str(out))  # reloads the same fold
    assert r.returncode == 0, r.stderr
    preds = pd.read_csv(out/'predictions.csv', dtype={'case': str})
    assert set(preds.case) == set(config['cases']['valid'])

def test_train_cli_bad_magnification(tiny_demo, tmp_path):
    r = run('bcc-train', str(tiny_demo), '--out', str(tmp_path/'x'), '--magnification', '400')
    assert r.returncode != 0 and 'No images at magnification [400]' in r.stderr and 'Traceback' not in r.stderr

def test_predict_cli_reports_bad_files_and_keeps_the_rest(trained_run, tiny_demo, tmp_path):
    "A corrupt, an empty and a missing file among good ones: each reported, the good ones predicted, exit status 1."
    out, _ = trained_run
    good = sorted(tiny_demo.rglob('*.png'))[:3]
    (tmp_path/'corrupt.png').write_bytes(good[0].read_bytes()[:200])   # a truncated PNG
    (tmp_path/'empty.png').touch()
    files = [str(good[0]), str(tmp_path/'corrupt.png'), str(good[1]), str(tmp_path/'empty.png'), str(tmp_path/'gone.png'), str(good[2])]
    r = run('bcc-predict', str(out), *files, '--csv', str(tmp_path/'preds.csv'))
    assert r.returncode == 1, r.stderr
    for bad in ('corrupt.png', 'empty.png', 'gone.png'): assert f"{tmp_path/bad}:" in r.stderr
    assert 'Traceback' not in r.stderr and '3 images predicted, 3 failed' in r.stdout
    df = pd.read_csv(tmp_path/'preds.csv')
    assert list(df.file) == files
    assert df.error.isna().tolist() == [True, False, True, False, False, True]
    ok = df[df.error.isna()]
    assert ok.label.isin(['benign', 'malignant']).all() and ((ok.prob_benign + ok.prob_malignant - 1).abs() < 1e-5).all()
    op = json.loads((out/'model.json').read_text()).get('threshold')
    if op: assert ((ok.prob_malignant >= op['threshold']) == (ok.label == 'malignant')).all()  # the saved operating point

def test_predict_cli_folder_and_all_good(trained_run, tiny_demo, tmp_path):
    out, _ = trained_run
    r = run('bcc-predict', str(out), str(tiny_demo), '--csv', str(tmp_path/'p.csv'), '--tta')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path/'p.csv')) == len(list(tiny_demo.rglob('*.png'))) == 24

def test_predict_cli_not_a_run_folder(tmp_path):
    r = run('bcc-predict', str(tmp_path), str(tmp_path))
    assert r.returncode != 0 and 'model.json is missing' in r.stderr and 'Traceback' not in r.stderr

def test_resume_after_the_process_is_killed(tiny_demo, tmp_path):
    "Kill bcc-train after its first epoch's checkpoint; --resume finishes the run with every epoch once."
    import os, signal, time
    out = tmp_path/'killed'
    args = ['bcc-train', str(tiny_demo), '--out', str(out), '--size', '32', '--bs', '4', '--epochs', '6', '--quiet',
            '--arch', 'densenet121', '--schedule', 'one_cycle']
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path/'.killed.bcc-partial'/'checkpoints'/'last.json'   # the run is written beside its folder until it finishes
    t0 = time.time()
    while not state.exists() and p.poll() is None and time.time() - t0 < 600: time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = json.loads(state.read_text())['epoch']
    assert done < 5 and not (out/'model.safetensors').exists()
    r = run('bcc-train', str(tiny_demo), '--out', str(out), '--size', '32', '--epochs', '6', '--quiet')
    assert r.returncode != 0 and 'was interrupted at epoch' in r.stderr and '--resume' in r.stderr   # not silently restarted
    r = run('bcc-train', '--resume', str(out), '--quiet')
    assert r.returncode == 0, r.stderr
    h = pd.read_csv(out/'history.csv')
    assert list(h.epoch) == list(range(6)) and h.train_loss.notna().all()
    config = json.loads((out/'config.json').read_text())
    assert config['resumed'][0]['from_epoch'] >= done + 1 and config['epochs_run'] == 6
    assert (out/'model.safetensors').exists() and not (out/'checkpoints').exists() and not state.exists()
    r = run('bcc-train', '--resume', str(out))
    assert r.returncode != 0 and 'no interrupted run' in r.stderr

def test_multi_process_training_with_accelerate(tiny_demo, tmp_path):
    "Two processes on the CPU through `accelerate launch`: the path multi-GPU training takes."
    pytest.importorskip('accelerate')
    out = tmp_path/'ddp'
    r = run('accelerate', 'launch', '--multi_gpu', '--num_processes', '2', '-m', 'bcc_nb.train', str(tiny_demo),
            '--out', str(out), '--size', '32', '--bs', '4', '--epochs', '2', '--arch', 'resnet18', '--pretrained', 'false', '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    config = json.loads((out/'config.json').read_text())
    assert config['world_size'] == 2
    assert len(pd.read_csv(out/'history.csv')) == 2 and (out/'model.safetensors').exists()
    assert r.stdout.count('Run folder:') == 1   # only the first process reports and writes

def test_cross_validation_cli(tiny_demo, tmp_path):
    "bcc-cv: one run per patient-grouped fold, every image validated once, summary and pooled metrics; a rerun reuses the folds."
    out = tmp_path/'cv'
    args = ['bcc-cv', str(tiny_demo), '--out', str(out), '--folds', '2', '--arch', 'resnet18', '--size', '32', '--bs', '4',
            '--epochs', '1', '--n-boot', '50']
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert 'mean ± std over folds' in r.stdout and 'pooled out-of-fold' in r.stdout
    m = json.loads((out/'cv_metrics.json').read_text())
    assert m['folds'] == 2 and len(m['per_fold']) == 2 and 'roc_auc' in m['mean'] and 'roc_auc' in m['pooled']['ci95']
    oof = pd.read_csv(out/'predictions.csv', dtype={'case': str})
    assert len(oof) == 24 and oof.path.is_unique and oof.groupby('case').fold.nunique().max() == 1
    valid = [set(json.loads((out/f'fold{i}'/'config.json').read_text())['cases']['valid']) for i in range(2)]
    assert not valid[0] & valid[1] and valid[0] | valid[1] == set(oof.case)
    assert 'Per-fold spread' in (out/'report.html').read_text()
    pts = pd.read_csv(out/'patients.csv', dtype={'case': str})   # one row per patient, from the fold that scored them
    assert sorted(pts.case) == sorted(set(oof.case)) and pts.n_images.sum() == len(oof)
    assert pts.set_index('case').fold.sort_index().equals(oof.groupby('case').fold.first().sort_index()) and pts.share_correct.is_monotonic_increasing
    assert 'Patients, worst first' in (out/'report.html').read_text()
    model0 = (out/'fold0'/'model.safetensors').stat().st_mtime_ns
    r = run(*args)   # both folds are done: nothing is retrained
    assert r.returncode == 0, r.stderr
    assert (out/'fold0'/'model.safetensors').stat().st_mtime_ns == model0

def test_predict_cli_bf16_close_to_fp32(trained_run, tiny_demo, tmp_path):
    out, _ = trained_run
    for prec in ('fp32', 'bf16'):
        r = run('bcc-predict', str(out), str(tiny_demo), '--csv', str(tmp_path/f'{prec}.csv'), '--precision', prec)
        assert r.returncode == 0, r.stderr
    a, b = (pd.read_csv(tmp_path/f'{p}.csv') for p in ('fp32', 'bf16'))
    assert list(a.file) == list(b.file) and (a.prob_malignant - b.prob_malignant).abs().max() < 0.05
    r = run('bcc-predict', str(out), str(tiny_demo), '--precision', 'fp8')
    assert r.returncode != 0 and "precision must be 'fp32' or 'bf16'" in r.stderr and 'Traceback' not in r.stderr

def test_train_cli_view_mag_scales_each_field_by_its_magnification(tmp_path):
    "--view-mag 100: model.json keeps it, and a 40X field is scored by a grid 2.5 times as wide as a 100X field's (the same tissue per pixel)."
    from bcc_nb.demo import make_demo_data
    from bcc_nb.predict import load_classifier
    data = make_demo_data(tmp_path/'mags', n_patients=4, images_per_patient=2, magnifications=(40, 100), size=(175, 115))
    out = tmp_path/'run'
    r = run('bcc-train', str(data), '--out', str(out), '--size', '32', '--bs', '4', '--epochs', '1', '--arch', 'resnet18',
            '--pretrained', 'false', '--view-mag', '100', '--stain-normalize', 'none', '--quiet')
    assert r.returncode == 0, r.stderr
    assert json.loads((out/'config.json').read_text())['view_mag'] == 100 and json.loads((out/'model.json').read_text())['view_mag'] == 100
    clf = load_classifier(out, device='cpu')
    grids = [len(clf.views(next(data.rglob(f'*-{m}-*.png')))[0]) for m in (40, 100)]
    assert grids == [35, 6], grids   # 100X: shorter side 1.8 patches, a 3x2 grid; 40X: 4.5 patches, 7x5
    r = run('bcc-evaluate', str(out), '--data', str(data), '--split', 'all')   # an external cohort, every field scored as trained
    assert r.returncode == 0, r.stderr
    [preds] = out.glob('cohort-*/predictions.csv')
    assert sorted(set(pd.read_csv(preds).magnification)) == [40, 100]
    by_mag = json.loads((preds.parent/'metrics.json').read_text())['by_magnification']   # each magnification scored on its own
    assert [(r['magnification'], r['n_images']) for r in by_mag] == [(40, 8), (100, 8)] and 'By magnification' in (preds.parent/'report.html').read_text()
