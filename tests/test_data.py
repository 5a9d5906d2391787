"Data layouts, patient-grouped splits and bad input, on files the tests make, and on the real BreakHis sample."
import shutil, warnings
import numpy as np
import pytest
from PIL import Image
from bcc_nb.data import breakhis_manifest, patient_split, check_patient_split, parse_breakhis_name
from bcc_nb.datasets import detect_layout
from bcc_nb.loaders import image_dataloaders

def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='No such folder'): image_dataloaders(tmp_path/'nope')

def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match='No image files'): image_dataloaders(tmp_path)
    (tmp_path/'notes.txt').write_text('hello')
    with pytest.raises(ValueError, match='No image files'): image_dataloaders(tmp_path)

def test_folder_layout_with_one_class(tmp_path, tiny_demo):
    files = sorted(tiny_demo.rglob('SOB_B_*.png'))
    for split, fs in (('train', files[:6]), ('valid', files[6:9])):
        (tmp_path/split/'benign').mkdir(parents=True)
        for f in fs: shutil.copy(f, tmp_path/split/'benign'/f.name)
    with pytest.raises(ValueError, match='Only one class'): image_dataloaders(tmp_path)

def test_folder_layout_validation_name_and_warning(tmp_path, tiny_demo):
    for i, f in enumerate(sorted(tiny_demo.rglob('*.png'))):
        d = tmp_path/('validation' if i % 4 == 0 else 'train')/parse_breakhis_name(f)['label']
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d/f.name)
    assert detect_layout(tmp_path) == 'folders'
    with pytest.warns(UserWarning, match='cannot check'): dls = image_dataloaders(tmp_path, size=32, bs=4)
    assert dls.vocab == ['benign', 'malignant'] and len(dls.valid_ds) == 6

def test_class_with_one_patient_cannot_be_split(tiny_demo):
    df = breakhis_manifest(tiny_demo)
    one_benign = df[(df.label == 'malignant') | (df.case == df[df.label == 'benign'].case.iloc[0])]
    with pytest.raises(ValueError, match='fewer than 2 patients'): patient_split(one_benign.reset_index(drop=True))

def test_splits_never_leak_patients(tiny_demo):
    df = breakhis_manifest(tiny_demo)
    for seed in range(5):
        tr, va = patient_split(df, 0.34, seed)
        assert not set(df.case[tr]) & set(df.case[va])
        assert set(df.label[va]) == {'benign', 'malignant'}
        assert len(tr) + len(va) == len(df)

def test_check_patient_split_catches_a_leak():
    with pytest.raises(ValueError, match=r"Patient leak: cases \['b'\]"):
        check_patient_split(['a', 'b', 'b', 'c'], [0, 0, 0, 1], [0, 1, 3], [2])

def test_slides_of_one_case_stay_together(tiny_demo):
    df = breakhis_manifest(tiny_demo)
    multi = df.groupby('case').slide.nunique()
    assert (multi > 1).any(), "the demo data should have cases with two slides"
    tr, va = patient_split(df)
    for case in multi[multi > 1].index:
        assert df.case[tr].eq(case).any() != df.case[va].eq(case).any()

def test_non_ascii_paths_and_symlinks(tmp_path, tiny_demo):
    target = tmp_path/'données ñ'/'BreaKHis'
    shutil.copytree(tiny_demo, target)
    link = tmp_path/'link'
    link.symlink_to(target, target_is_directory=True)
    for p in (target, link):
        dls = image_dataloaders(p, size=32, bs=4)
        xb, yb = dls.one_batch()
        assert xb.shape == (4, 3, 32, 32)

# --- the real BreakHis sample (skipped where ../shared/data/breakhis-dev is absent) ---

def test_real_breakhis_counts(real_data):
    df = breakhis_manifest(real_data)
    assert len(df) == 328
    assert df.label.value_counts().to_dict() == {'benign': 183, 'malignant': 145}
    assert df.groupby('label').case.nunique().to_dict() == {'benign': 6, 'malignant': 14}
    # 7 of the 8 subtypes: the sample has no tubular adenoma (its README says all 8 appear)
    assert df.case.nunique() == 20 and df.subtype.nunique() == 7 and 'tubular_adenoma' not in set(df.subtype)
    assert set(df.magnification) == {40, 100, 200, 400}
    # one case, three slides; and one case (21998) under two tumour types
    assert set(df[df.case == '22549'].slide) == {'14-22549AB', '14-22549CD', '14-22549G'}
    assert set(df[df.case == '21998'].subtype) == {'fibroadenoma', 'phyllodes_tumor'}
    assert df.magnification.value_counts().to_dict() == {100: 302, 200: 16, 40: 7, 400: 3}

def test_real_breakhis_splits_are_patient_disjoint(real_data):
    df = breakhis_manifest(real_data)
    for seed in range(10):
        tr, va = patient_split(df, 0.25, seed)
        assert not set(df.case[tr]) & set(df.case[va])
        assert set(df.label[va]) == set(df.label[tr]) == {'benign', 'malignant'}

def test_real_breakhis_dataloaders(real_data):
    dls = image_dataloaders(real_data, size=64, bs=8)
    assert dls.images.skipped.empty and len(dls.train_ds) + len(dls.valid_ds) == 328
    # halved 700x460 (a few BreakHis originals are 700x456)
    assert set(dls.images.manifest['mode']) == {'RGB'} and set(zip(dls.images.manifest.width, dls.images.manifest.height)) == {(350, 230), (350, 228)}
    xb, yb = dls.one_batch()
    assert xb.shape == (8, 3, 64, 64)

# --- unreadable files, filters, tasks and folds ---

def _with_bad_files(tmp_path, tiny_demo):
    root = tmp_path/'data'
    shutil.copytree(tiny_demo, root)
    folder = next(root.rglob('100X'))
    good = next(folder.glob('*.png'))
    stem = good.stem.rsplit('-', 1)[0]
    (folder/f'{stem}-901.png').write_bytes(good.read_bytes()[:1500])   # truncated
    (folder/f'{stem}-902.png').write_bytes(b'')                          # zero bytes
    (folder/f'{stem}-903.png').write_text('<html>not an image</html>')  # wrong content
    return root

def test_unreadable_files_are_skipped_with_a_list(tmp_path, tiny_demo):
    root = _with_bad_files(tmp_path, tiny_demo)
    with pytest.warns(UserWarning) as w: dls = image_dataloaders(root, size=32, bs=4)
    msg = ' '.join(str(x.message) for x in w)
    assert all(f'-90{i}.png' in msg for i in (1, 2, 3)) and 'Skipping 3' in msg
    assert sorted(dls.images.skipped.path.map(lambda p: p[-7:])) == ['901.png', '902.png', '903.png']
    assert len(dls.train_ds) + len(dls.valid_ds) == 24
    for _ in dls.train: pass  # every batch decodes

def test_unreadable_files_strict(tmp_path, tiny_demo):
    root = _with_bad_files(tmp_path, tiny_demo)
    with pytest.raises(ValueError, match=r'3 unreadable image file\(s\)[\s\S]*-902.png: empty file'):
        image_dataloaders(root, strict=True)

def test_kfold_validates_every_patient_once(tiny_demo):
    from bcc_nb.data import patient_kfold
    df = breakhis_manifest(tiny_demo)
    folds = patient_kfold(df, 3, seed=0)
    assert len(folds) == 3
    assert sorted(np.concatenate([va for _, va in folds])) == list(range(len(df)))
    with pytest.raises(ValueError, match='4 folds need at least 4 patients per class'): patient_kfold(df, 4)

def test_subtype_task(tmp_path):
    from bcc_nb.demo import make_demo_data
    root = make_demo_data(tmp_path/'d16', n_patients=16, images_per_patient=2, size=(64, 42))
    dls = image_dataloaders(root, size=32, bs=4, task='subtype', folds=2, fold=1)
    assert len(dls.vocab) == 8 and set(dls.images.manifest.query("split=='valid'").subtype) == set(dls.vocab)
    with pytest.raises(ValueError, match="task must be"): image_dataloaders(root, task='grade')

def test_real_breakhis_magnification_and_folds(real_data):
    from bcc_nb.data import patient_kfold
    dls = image_dataloaders(real_data, size=32, bs=8, magnification=100)
    assert set(dls.images.manifest.magnification) == {100} and len(dls.images.manifest) == 302
    assert dls.images.skipped.empty
    df = breakhis_manifest(real_data)
    for tr, va in patient_kfold(df, 5):
        assert not set(df.case[tr]) & set(df.case[va])

def test_class_folders_without_split(tmp_path, tiny_demo):
    for i, f in enumerate(sorted(tiny_demo.rglob('*.png'))):  # plain names: no patient ids
        d = tmp_path/parse_breakhis_name(f)['label']
        d.mkdir(exist_ok=True)
        shutil.copy(f, d/f'img{i:03d}.png')
    assert detect_layout(tmp_path) == 'classes'
    with pytest.warns(UserWarning, match='split the images at random'): dls = image_dataloaders(tmp_path, size=32, bs=4)
    assert dls.vocab == ['benign', 'malignant'] and len(dls.train_ds) + len(dls.valid_ds) == 24
    assert set(dls.images.manifest.query("split=='valid'").label) == {'benign', 'malignant'}
    with pytest.raises(ValueError, match='folds need patient ids'): image_dataloaders(tmp_path, folds=3)

def test_flattened_breakhis_files(tmp_path, tiny_demo):
    "Kaggle re-uploads flatten the tree: everything is recovered from the file names."
    for f in tiny_demo.rglob('*.png'): shutil.copy(f, tmp_path/f.name)
    dls = image_dataloaders(tmp_path, size=32, bs=4)
    assert dls.images.layout == 'breakhis' and len(dls.images.manifest) == 24 and dls.images.manifest.case.nunique() == 6
    assert not set(dls.images.manifest.case[dls.images.manifest.split == 'train']) & set(dls.images.manifest.case[dls.images.manifest.split == 'valid'])

def test_resized_cache_is_rebuilt_when_an_image_changes(tiny_demo, tmp_path):
    "A cached copy is keyed by the file's checksum: an edited image gets a new copy, and training reads the copies."
    import pandas as pd
    from pathlib import Path
    data = tmp_path/'data'; shutil.copytree(tiny_demo, data)
    cache = tmp_path/'cache'
    dls = image_dataloaders(data, size=32, bs=4, cache=cache)
    copies = sorted((cache/'32').glob('*.png'))
    assert len(copies) == len(dls.train_ds) + len(dls.valid_ds) == 24
    assert all(min(Image.open(c).size) == 32 for c in copies)
    assert set(dls.train_ds.items.load_path) <= {str(c) for c in copies}
    f = sorted(data.rglob('*.png'))[0]
    Image.open(f).rotate(90, expand=True).save(f)            # the image changes on disk
    dls2 = image_dataloaders(data, size=32, bs=4, cache=cache)
    row = pd.concat([dls2.train_ds.items, dls2.valid_ds.items]).set_index('path').loc[str(f)]
    assert Path(row.load_path).stem == row.md5 and Path(row.load_path) not in copies
    assert len(list((cache/'32').glob('*.png'))) == 25

def test_real_breakhis_cache_gives_the_same_batches(real_data, tmp_path):
    "Reading the resized copies changes no pixel: same validation batch, same training batch for the same seed, stain normalisation included."
    from fastai.vision.all import set_seed
    from bcc_nb.augment import histo_tfms
    target = sorted((real_data/'BreaKHis_v1').rglob('*.png'))[0]
    item_tfms, _ = histo_tfms(64, stain_normalize='reinhard', stain_target=target)
    made = {}
    for cache in (tmp_path/'cache', False):
        set_seed(3)
        dls = image_dataloaders(real_data, size=64, bs=8, item_tfms=item_tfms, magnification=100, cache=cache)
        set_seed(4)
        made[bool(cache)] = dls.valid.one_batch()[0], dls.train.one_batch()[0], dls.cache_dir
    assert made[True][2] == tmp_path/'cache' and made[False][2] is None
    assert len(list((tmp_path/'cache').glob(f'64_{item_tfms[1].key}/*.png'))) > 0   # normalised once, kept with the resize's key and the stain's
    for a, b in zip(made[True][:2], made[False][:2]): assert a.shape == (8, 3, 64, 64) and (a == b).all()

def test_cache_default_location_and_when_it_is_used(tiny_demo, tmp_path, monkeypatch):
    "On by default in $BCC_NB_CACHE; off for item transforms it would change; a warning (not a failure) if it cannot be written."
    from fastai.vision.all import Resize
    monkeypatch.setenv('BCC_NB_CACHE', str(tmp_path/'c'))
    data = tmp_path/'data'; shutil.copytree(tiny_demo, data)
    dls = image_dataloaders(data, size=32, bs=4)
    assert dls.cache_dir == tmp_path/'c' and len(list((tmp_path/'c'/'32').glob('*.png'))) == 24
    shutil.rmtree(data)   # the batches now can only come from the copies
    assert dls.train.one_batch()[0].shape == dls.valid.one_batch()[0].shape == (4, 3, 32, 32)
    assert image_dataloaders(tiny_demo, size=32, bs=4, item_tfms=Resize(32)).cache_dir is None  # would change the crops
    with pytest.warns(UserWarning, match='nothing to cache'):
        image_dataloaders(tiny_demo, size=32, bs=4, item_tfms=Resize(32), cache=True)
    (tmp_path/'file').write_text('not a folder')
    monkeypatch.setenv('BCC_NB_CACHE', str(tmp_path/'file'/'c'))
    with pytest.warns(UserWarning, match='cannot be written'):
        dls = image_dataloaders(tiny_demo, size=32, bs=4)
    assert dls.cache_dir is None and dls.one_batch()[0].shape == (4, 3, 32, 32)
