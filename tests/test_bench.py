"The benchmark runs at a tiny size and writes what it promises; its numbers are never asserted (speed is not a test)."
import json, subprocess
import pandas as pd

def test_bench_cli_writes_json_and_markdown(tmp_path):
    out = tmp_path/'res'
    r = subprocess.run(['bcc-bench', '--out', str(out), '--sizes', '32', '--arch', 'resnet18', '--bs', '4', '--steps', '1',
                        '--rounds', '2', '--n-images', '8', '--workers', '0'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.with_suffix('.json').read_text())
    assert {'machine', 'settings', 'results', 'ratios', 'peak_rss_mib', 'profiles'} <= set(res)
    assert {'cpu', 'cores', 'torch', 'fastai', 'bcc_nb', 'date'} <= set(res['machine'])
    r_ = res['results']
    assert set(r_) == {'train_32', 'optimizer_32', 'frozen_32', 'inference_32', 'data_32'}
    assert {'raw_torch', 'raw_torch_fast', 'fastai', 'bcc_nb', 'bcc_nb_fastai_adam', 'bcc_nb_contiguous'} <= set(r_['train_32'])
    assert {'fastai_adam_ms', 'bcc_nb_ms', 'torch_adamw_ms'} <= set(r_['optimizer_32'])
    prof = res['profiles']['profile_32']
    assert set(prof['breakdown_ms_per_step']) == {'data', 'forward', 'loss', 'backward', 'optimizer', 'callbacks'}
    assert 'Self CPU' in prof['top_ops_bcc_nb'] and 'Self CPU' in prof['top_ops_raw_fast']
    assert {'fastai_get_preds', 'bcc_nb', 'bcc_nb_tta', 'bcc_nb_batch1_latency_ms'} <= set(r_['inference_32'])
    assert {'png_workers0', 'cache_workers0', 'cache_build_s', 'dls_setup_s'} <= set(r_['data_32'])
    for sec in r_.values():
        for v in sec.values():
            assert v['median'] > 0 and len(v.get('rates', [0, 0])) == 2   # two measured rounds, the warm-up dropped
    assert {'bcc_nb_vs_raw_torch', 'bcc_nb_vs_raw_torch_fast', 'fastai_vs_raw_torch'} <= set(res['ratios']['train_32'])
    assert {'bcc_nb_time_vs_torch_adamw'} <= set(res['ratios']['optimizer_32'])
    assert {'bcc_nb_cached_head', 'bcc_nb_cached_head_epoch'} <= set(r_['frozen_32'])
    md = out.with_suffix('.md').read_text()
    assert 'bcc_nb_vs_raw_torch' in md and res['machine']['cpu'] in md and 'ms per step' in md


def test_paired_auc_compares_two_cross_validations_on_the_same_patients(tmp_path):
    "bench/paired_auc.py: images matched by file name across folders, whole patients resampled, the interval is for the difference."
    import importlib.util, numpy as np
    spec = importlib.util.spec_from_file_location('paired_auc', 'bench/paired_auc.py')
    pa = importlib.util.module_from_spec(spec); spec.loader.exec_module(pa)
    rng = np.random.default_rng(0)
    case = np.repeat([f'p{i}' for i in range(10)], 4)
    true = np.where(np.repeat(np.arange(10) < 4, 4), 'benign', 'malignant')
    names = [f'SOB_x-{c}-100-{j:03d}.png' for c, j in zip(case, np.tile(np.arange(4), 10))]
    good = np.where(true == 'malignant', 0.8, 0.2) + rng.uniform(-0.1, 0.1, len(true))
    for name, prob, root in (('a', good, '/data/'), ('b', rng.uniform(size=len(true)), '../elsewhere/')):
        (tmp_path/name).mkdir()
        pd.DataFrame(dict(path=[root + n for n in names], case=case, true=true, prob_malignant=prob, magnification=100)
                    ).sample(frac=1, random_state=1).to_csv(tmp_path/name/'predictions.csv', index=False)
    r = pa.paired_auc(tmp_path/'a', tmp_path/'b', n_boot=200)
    assert r['auc_a'] == 1.0 and r['diff'] > 0.2 and 0 < r['ci'][0] < r['ci'][1] and r['p_a_better'] > 0.95
    same = pa.paired_auc(tmp_path/'a', tmp_path/'a', n_boot=50)
    assert same['diff'] == 0 and same['ci'] == [0.0, 0.0]


def test_ensemble_cv_averages_out_of_fold_predictions_and_refuses_other_folds(tmp_path):
    "bench/ensemble_cv.py: each image's P(malignant) averaged over recipes scored on the same folds; other folds only with --other-folds."
    import sys, numpy as np
    case = np.repeat([f'p{i}' for i in range(6)], 3)
    true = np.where(np.repeat(np.arange(6) < 3, 3), 'benign', 'malignant')
    names = [f'SOB_x-{c}-100-{j:03d}.png' for c, j in zip(case, np.tile(np.arange(3), 6))]
    def cv(name, prob, fold):
        d = pd.DataFrame(dict(path=['/data/' + n for n in names], md5=[f'm{i}' for i in range(len(names))], case=case, true=true,
                              prob_malignant=prob, prob_benign=1 - prob, pred='benign', split='valid'))
        for i in range(3): (tmp_path/name/f'fold{i}').mkdir(parents=True); d[fold == i].to_csv(tmp_path/name/f'fold{i}'/'predictions.csv', index=False)
        d.to_csv(tmp_path/name/'predictions.csv', index=False)
    fold = np.repeat([0, 1, 2, 0, 1, 2], 3)   # one benign and one malignant patient per fold
    pa, pb = np.linspace(0.1, 0.9, 18), np.linspace(0.9, 0.1, 18)
    cv('a', pa, fold); cv('b', pb, fold); cv('c', pa, np.roll(fold, 3))
    r = subprocess.run([sys.executable, 'bench/ensemble_cv.py', str(tmp_path/'a'), str(tmp_path/'b'), '--out', str(tmp_path/'ens')],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'mean of the 2' in r.stdout and r.stdout.count('pooled') == 3
    ens = pd.read_csv(tmp_path/'ens'/'predictions.csv')
    assert np.allclose(ens.prob_malignant, (pa + pb)/2) and len(ens) == 18 and (ens.fold.values == fold).all()
    bad = subprocess.run([sys.executable, 'bench/ensemble_cv.py', str(tmp_path/'a'), str(tmp_path/'c')], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and 'other folds' in bad.stderr and '--other-folds' in bad.stderr
    # replicates with other seeds (other folds) when asked; a kept predictions.csv with a fold column needs no fold folders
    r = subprocess.run([sys.executable, 'bench/ensemble_cv.py', str(tmp_path/'ens'), str(tmp_path/'c'), '--other-folds', '--out', str(tmp_path/'seeds')],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    seeds = pd.read_csv(tmp_path/'seeds'/'predictions.csv')
    assert np.allclose(seeds.prob_malignant, ((pa + pb)/2 + pa)/2) and (seeds.fold.values == fold).all()   # the first run's folds
    before = (tmp_path/'a'/'predictions.csv').read_bytes()
    run = tmp_path/'run'; run.mkdir(); (run/'config.json').write_text('{}'); (run/'predictions.csv').write_text('mine')
    for out, why, more in ((tmp_path/'a', 'cross-validation folder', []), (tmp_path/'ens', 'exists', []), (run, 'run or', ['--overwrite'])):   # nothing written over
        r = subprocess.run([sys.executable, 'bench/ensemble_cv.py', str(tmp_path/'a'), str(tmp_path/'b'), '--out', str(out), *more],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode != 0 and why in r.stderr
    assert (tmp_path/'a'/'predictions.csv').read_bytes() == before and (run/'predictions.csv').read_text() == 'mine'
    assert np.allclose(pd.read_csv(tmp_path/'ens'/'predictions.csv').prob_malignant, (pa + pb)/2)

def test_bn_stats_cv_reestimates_batch_norm_statistics_and_writes_nothing_over(tiny_demo, tmp_path):
    "bench/bn_stats_cv.py: the statistics it sets are the mean of the test-time views; one predictions.csv per way, none over another."
    import sys, importlib.util, numpy as np, torch
    from pathlib import Path
    from bcc_nb.predict import load_classifier
    cv = tmp_path/'cv'
    r = subprocess.run(['bcc-cv', str(tiny_demo), '--out', str(cv), '--folds', '2', '--arch', 'resnet18', '--size', '32', '--bs', '4',
                        '--epochs', '1', '--n-boot', '10', '--pretrained', 'false'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    spec = importlib.util.spec_from_file_location('bn_stats_cv', 'bench/bn_stats_cv.py')
    bn = importlib.util.module_from_spec(spec); spec.loader.exec_module(bn)
    clf = load_classifier(cv/'fold0', device='cpu')
    train = pd.read_csv(cv/'fold0'/'manifest.csv').query("split == 'train'").path
    seen = []   # the input of the first batch-norm layer, for every view at once
    h = clf.model[0][1].register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    n_bn, n_views = bn.reestimate_bn(clf, train, bs=10_000)   # one batch: the cumulative mean is the plain mean
    h.remove()
    assert n_bn > 20 and n_views >= len(train) and len(seen) == 1 and not clf.model.training
    x = seen[0]
    assert torch.allclose(clf.model[0][1].running_mean, x.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(clf.model[0][1].running_var, x.var((0, 2, 3), unbiased=True), rtol=1e-3, atol=1e-6)
    head = load_classifier(cv/'fold0', device='cpu')   # only the head's BatchNorm1d: the body's statistics stay as saved
    body = {k: v.clone() for k, v in head.model[0].state_dict().items()}
    assert bn.reestimate_bn(head, train, head_only=True)[0] == 1
    assert all(torch.equal(v, head.model[0].state_dict()[k]) for k, v in body.items())
    head_bn = lambda c: next(m for m in c.model[1].modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert not torch.allclose(head_bn(head).running_var, head_bn(load_classifier(cv/'fold0', device='cpu')).running_var)
    out = tmp_path/'bn'
    r = subprocess.run([sys.executable, 'bench/bn_stats_cv.py', str(cv), '--out', str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(res) == {'cv', 'plain', 'train', 'head', 'target'} and all(len(res[w]['fold_roc_auc']) == 2 for w in ('plain', 'train', 'head', 'target'))
    oof = pd.read_csv(cv/'predictions.csv')
    ways = {w: pd.read_csv(out/w/'predictions.csv') for w in ('plain', 'train', 'head', 'target')}
    assert all(len(d) == len(oof) and set(d.path) == set(oof.path) for d in ways.values())
    assert np.allclose(ways['plain'].set_index('path').prob_malignant.loc[oof.path], oof.prob_malignant, atol=1e-4)
    assert not np.allclose(ways['train'].prob_malignant, ways['plain'].prob_malignant, atol=1e-4)   # the statistics changed the scores
    before = {p: p.read_bytes() for p in out.rglob('*.csv')}
    r = subprocess.run([sys.executable, 'bench/bn_stats_cv.py', str(cv), '--out', str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode != 0 and 'exists' in r.stderr and all(p.read_bytes() == b for p, b in before.items())

def test_colour_baseline_scores_stain_normalised_colour_on_the_same_folds(tiny_demo, tmp_path):
    "bench/colour_baseline.py --stain-normalize macenko: the statistics of the normalised images, out-of-fold predictions paired_auc reads."
    import sys, importlib.util, numpy as np
    from bcc_nb.augment import StainNormalize
    from bcc_nb.data import breakhis_manifest
    spec = importlib.util.spec_from_file_location('colour_baseline', 'bench/colour_baseline.py')
    cb = importlib.util.module_from_spec(spec); spec.loader.exec_module(cb)
    f = breakhis_manifest(tiny_demo).path.iloc[0]
    assert not np.allclose(cb.colour_features(f), cb.colour_features(f, StainNormalize()), atol=1e-3)   # the normalisation is applied
    r = subprocess.run([sys.executable, 'bench/colour_baseline.py', str(tiny_demo), '--folds', '3', '--stain-normalize', 'macenko',
                        '--out', str(tmp_path/'floor')], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['stain_normalize'] == 'macenko' and res['patients'] == 6 and len(res['fold_roc_auc']) == 3
    d = pd.read_csv(tmp_path/'floor'/'predictions.csv')
    assert len(d) == 24 and d.path.str.startswith('BreaKHis_v1/').all() and d.prob_malignant.between(0, 1).all()
    assert np.allclose(d.prob_benign + d.prob_malignant, 1) and set(d.true) == {'benign', 'malignant'}
    assert set(d.fold) == {0, 1, 2} and (d.groupby('case').fold.nunique() == 1).all()   # each patient scored in exactly one fold
    spec = importlib.util.spec_from_file_location('paired_auc', 'bench/paired_auc.py')
    pa = importlib.util.module_from_spec(spec); spec.loader.exec_module(pa)
    assert pa.paired_auc(tmp_path/'floor', tmp_path/'floor', n_boot=20)['diff'] == 0
    run = tmp_path/'run'; run.mkdir(); (run/'config.json').write_text('{}'); (run/'predictions.csv').write_text('mine')
    before = (tmp_path/'floor'/'predictions.csv').read_bytes()
    for out, why, more in ((tmp_path/'floor', 'exists', []), (run, 'run or', ['--overwrite'])):   # nothing written over
        r = subprocess.run([sys.executable, 'bench/colour_baseline.py', str(tiny_demo), '--folds', '3', '--out', str(out), *more],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode != 0 and why in r.stderr
    assert (tmp_path/'floor'/'predictions.csv').read_bytes() == before and (run/'predictions.csv').read_text() == 'mine'

def test_tissue_floor_measures_stain_nuclei_and_texture(tiny_demo, tmp_path):
    "bench/colour_baseline.py --features tissue: stain amounts by deconvolution, nuclei counted, texture patterns; the CLI uses them."
    import sys, importlib.util, numpy as np
    from bcc_nb.augment import MACENKO_REFERENCE
    spec = importlib.util.spec_from_file_location('colour_baseline', 'bench/colour_baseline.py')
    cb = importlib.util.module_from_spec(spec); spec.loader.exec_module(cb)
    he = np.array(MACENKO_REFERENCE['HERef'])
    pixel = lambda h, e: np.clip(240 * np.exp(-(he @ [h, e])) - 1, 0, 255)
    amounts = cb.stain_amounts(np.array([[pixel(1.2, 0), pixel(0, 0.8)]]))   # pure haematoxylin, pure eosin
    assert np.allclose(amounts[0, 0], [1.2, 0], atol=0.02) and np.allclose(amounts[0, 1], [0, 0.8], atol=0.02)
    assert np.allclose(cb.lbp_histogram(np.full((9, 9), 7.)), np.eye(10)[8])   # a flat field: every neighbour >= the centre
    im = np.tile(pixel(0.1, 0.6), (230, 300, 1))   # pink stroma with 7 round nuclei of radius 5
    yy, xx = np.mgrid[:230, :300]
    for cy, cx in [(30, 30), (30, 150), (30, 260), (120, 80), (120, 220), (200, 40), (200, 180)]:
        im[(yy - cy)**2 + (xx - cx)**2 <= 25] = pixel(1.6, 0.1)
    f = cb.tissue_features(im.round().astype(np.uint8))
    assert f.shape == (48,) and np.isclose(f[14], 7 / im[..., 0].size * 1e4, rtol=1e-6) and 60 < f[15] < 100   # 7 nuclei of ~80 px
    r = subprocess.run([sys.executable, 'bench/colour_baseline.py', str(tiny_demo), '--folds', '3', '--stain-normalize', 'macenko',
                        '--features', 'tissue', '--out', str(tmp_path/'tissue')], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['features'] == 'tissue' and len(res['fold_roc_auc']) == 3
    assert len(pd.read_csv(tmp_path/'tissue'/'predictions.csv')) == 24

def test_tta_cv_scores_a_denser_grid_and_writes_portable_predictions(tiny_demo, tmp_path):
    "bench/tta_cv.py --grid dense: a patch every half patch (5x3 on a 350x230 field), scored by the fold models; predictions paired_auc reads."
    import sys, importlib.util, numpy as np
    from PIL import Image
    spec = importlib.util.spec_from_file_location('tta_cv', 'bench/tta_cv.py')
    tc = importlib.util.module_from_spec(spec); spec.loader.exec_module(tc)
    ps = tc.dense_grid(Image.new('RGB', (350, 230)), 128)
    assert len(ps) == 15 and len(tc.patch_grid(Image.new('RGB', (350, 230)), 128)) == 6 and all(p.size == (128, 128) for p in ps)
    cv = tmp_path/'cv'
    r = subprocess.run(['bcc-cv', str(tiny_demo), '--out', str(cv), '--folds', '2', '--arch', 'resnet18', '--size', '32', '--bs', '4',
                        '--epochs', '1', '--n-boot', '10', '--pretrained', 'false'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path/'dense'
    run = lambda: subprocess.run([sys.executable, 'bench/tta_cv.py', str(cv), '--grid', 'dense', '--out', str(out)], capture_output=True, text=True, timeout=900)
    r = run()
    assert r.returncode == 0, r.stderr[-3000:]   # the covering grid reproduced each fold's predictions.csv (checked inside)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(res) == {'cv', 'plain', 'dense'} and len(res['dense']['fold_roc_auc']) == 2
    d, oof = pd.read_csv(out/'predictions.csv'), pd.read_csv(cv/'predictions.csv')
    assert len(d) == len(oof) == 24 and d.path.str.startswith('BreaKHis_v1/').all() and np.allclose(d.prob_benign + d.prob_malignant, 1)
    mine = oof.assign(path=oof.path.str.replace(r'^.*?(BreaKHis_v1/)', r'\1', regex=True)).set_index('path').prob_malignant
    assert not np.allclose(d.set_index('path').prob_malignant.loc[mine.index], mine, atol=1e-4)   # other patches, other scores
    before = (out/'predictions.csv').read_bytes()
    r = run()
    assert r.returncode != 0 and 'already' in r.stderr and (out/'predictions.csv').read_bytes() == before

def test_patients_cv_trains_each_fold_on_a_share_of_its_patients(tiny_demo, tmp_path, monkeypatch):
    "bench/patients_cv.py: the same folds and scored patients, each fold trained on a random share of its training patients per class."
    import sys, importlib.util, numpy as np
    monkeypatch.syspath_prepend('bench')
    spec = importlib.util.spec_from_file_location('patients_cv', 'bench/patients_cv.py')
    pc = importlib.util.module_from_spec(spec); spec.loader.exec_module(pc)
    df = pd.DataFrame(dict(case=[f'b{i}' for i in range(4)] + [f'm{i}' for i in range(6)] + ['v1', 'v2'],
                           label=['benign']*4 + ['malignant']*6 + ['benign', 'malignant'], split=['train']*10 + ['valid']*2)).loc[lambda d: d.index.repeat(3)]
    half = pc.keep_patients(df, 'label', 0.5, np.random.default_rng(0))
    n = half[half.split == 'train'].groupby('label').case.nunique()
    assert (n.benign, n.malignant) == (2, 3) and (half[half.split == 'valid'].case.tolist() == ['v1']*3 + ['v2']*3)
    assert half.groupby('case').size().eq(3).all()   # a kept patient keeps all its images
    assert pc.keep_patients(df, 'label', 0.5, np.random.default_rng(0)).equals(half)   # the same draw, the same patients
    assert pc.keep_patients(df, 'label', 0.01, np.random.default_rng(0))[lambda d: d.split == 'train'].groupby('label').case.nunique().eq(1).all()
    out = tmp_path/'half'
    run = lambda *extra: subprocess.run([sys.executable, 'bench/patients_cv.py', str(tiny_demo), '--frac', '0.5', '--out', str(out), '--folds', '2',
                                         '--arch', 'resnet18', '--size', '32', '--bs', '4', '--epochs', '1', *extra], capture_output=True, text=True, timeout=900)
    r = run()
    assert r.returncode == 0, r.stderr[-3000:]
    kept = json.loads((out/'kept_patients.json').read_text())
    oof = pd.read_csv(out/'predictions.csv', dtype={'case': str})
    assert oof.case.nunique() == 6 and len(oof) == 24   # every patient scored once, by the fold that never saw it
    for i in range(2):
        m = pd.read_csv(out/f'fold{i}'/'manifest.csv', dtype={'case': str})
        trained, full = set(m[m.split == 'train'].case), set(oof.case) - set(oof[oof.fold == i].case)
        assert trained == set(kept[f'fold{i}']) and trained < full and not trained & set(oof[oof.fold == i].case)
    before = (out/'predictions.csv').read_bytes()
    r = run('--draw', '1')   # other settings into the same folder: refused, nothing changed
    assert r.returncode != 0 and 'other settings' in r.stderr and (out/'predictions.csv').read_bytes() == before

def test_bench_folder_claims_only_its_own_folder(tmp_path, monkeypatch):
    "bench/bench_folder.py: a script's folder is reused only with the same settings, and never one another tool wrote."
    import pytest
    monkeypatch.syspath_prepend('bench')
    from bench_folder import claim
    from bcc_nb.runs import RunFolder
    out = claim(tmp_path/'a', 'mine.json', dict(mode='gray', seed=1), 'x.py')
    assert json.loads((out/'mine.json').read_text()) == dict(mode='gray', seed=1) and RunFolder(out).state() == 'run'
    assert claim(out, 'mine.json', dict(mode='gray', seed=1), 'x.py') == out   # the same settings: reused
    with pytest.raises(SystemExit, match='other settings'): claim(out, 'mine.json', dict(mode='std', seed=1), 'x.py')
    (tmp_path/'b').mkdir(); (tmp_path/'b'/'notes.txt').write_text('mine')
    with pytest.raises(SystemExit, match='not made by x.py'): claim(tmp_path/'b', 'mine.json', dict(mode='gray'), 'x.py')
    assert sorted(p.name for p in (tmp_path/'b').iterdir()) == ['notes.txt']
    with pytest.raises(SystemExit, match='not made by x.py'): claim(out, 'other.json', dict(mode='gray'), 'x.py')   # another script's folder
    import sys
    r = subprocess.run([sys.executable, 'bench/colour_free_cv.py', str(tmp_path), '--mode', 'gray', '--out', str(tmp_path/'b')],
                       capture_output=True, text=True, timeout=600)   # a script that claims its folder so: refuses before training
    assert r.returncode != 0 and 'not made by bench/colour_free_cv.py' in r.stderr
    assert sorted(p.name for p in (tmp_path/'b').iterdir()) == ['notes.txt']

def test_gpu_folds_trains_the_folds_bcc_quality_pools(tiny_demo, tmp_path):
    "bench/gpu_folds.py: folds trained side by side in processes are the ones bcc-quality trains: it pools them without training again."
    import sys
    out = tmp_path/'q'
    opts = ['--folds', '2', '--size', '32', '--epochs', '1', '--arch', 'resnet18']
    r = subprocess.run([sys.executable, 'bench/gpu_folds.py', str(tiny_demo), str(out), 'default:0,1', *opts, '--procs', '2', '--threads', '1'],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'default fold 0' in r.stdout and 'default fold 1' in r.stdout
    before = {i: (out/'default'/f'fold{i}'/'model.safetensors').stat().st_mtime_ns for i in range(2)}
    r = subprocess.run(['bcc-quality', str(tiny_demo), '--out', str(out), '--recipes', 'default', *opts, '--n-boot', '10'],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {i: (out/'default'/f'fold{i}'/'model.safetensors').stat().st_mtime_ns for i in range(2)} == before   # reused, not retrained
    oof = pd.read_csv(out/'default'/'predictions.csv')
    assert len(oof) == 24 and set(oof.fold) == {0, 1}
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'default').mkdir(); (tmp_path/'mine'/'default'/'notes.txt').write_text('mine')
    r = subprocess.run([sys.executable, 'bench/gpu_folds.py', str(tiny_demo), str(tmp_path/'mine'), 'default:0', *opts],
                       capture_output=True, text=True, timeout=300)   # somebody's folder: refused before any training
    assert r.returncode != 0 and 'did not write' in r.stderr
    assert [p.name for p in (tmp_path/'mine'/'default').iterdir()] == ['notes.txt']
