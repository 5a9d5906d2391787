"Issue 3's other layouts and inputs: CSV manifests, test/ folders, image formats and modes, class names, copies across splits."
import json, shutil, subprocess
import numpy as np, pandas as pd
import pytest
from PIL import Image
from bcc_nb.data import parse_breakhis_name, breakhis_manifest
from bcc_nb.loaders import image_dataloaders

def _folders(tmp_path, tiny_demo, names=('benign', 'malignant'), test=False):
    "train/validation(/test) class folders from the demo images, with plain file names and class folder `names`."
    files = sorted(tiny_demo.rglob('*.png'))
    for i, f in enumerate(files):
        split = 'test' if test and i % 6 == 1 else 'validation' if i % 4 == 0 else 'train'
        d = tmp_path/split/names[parse_breakhis_name(f)['label'] == 'malignant']
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d/f'img{i:03d}.png')
    return tmp_path

def test_csv_manifest_splits_by_patient_relative_paths(tmp_path, tiny_demo):
    df = breakhis_manifest(tiny_demo)
    (tmp_path/'imgs').mkdir()
    rows = []
    for i, r in df.iterrows():
        shutil.copy(r.path, tmp_path/'imgs'/f'{i}.png')
        rows.append(dict(path=f'imgs/{i}.png', label=r.label.upper(), patient=f'P{r.case}'))
    rows.append(dict(path='imgs/missing.png', label='BENIGN', patient='P1'))
    pd.DataFrame(rows).to_csv(tmp_path/'manifest.csv', index=False)
    with pytest.warns(UserWarning, match='missing.png: file not found'):
        dls = image_dataloaders(tmp_path/'manifest.csv', size=32, bs=4)
    m = dls.images.manifest
    assert dls.images.layout == 'manifest' and dls.vocab == ['benign', 'malignant'] and len(m) == 24
    assert not set(m.case[m.split == 'train']) & set(m.case[m.split == 'valid'])

def test_csv_manifest_bad_columns_and_splits(tmp_path):
    pd.DataFrame({'file': ['a.png'], 'label': ['benign']}).to_csv(tmp_path/'m.csv', index=False)
    with pytest.raises(ValueError, match=r"needs the columns 'path' and 'label'; it lacks \['path'\]"): image_dataloaders(tmp_path/'m.csv')
    pd.DataFrame({'path': ['a.png'], 'label': ['benign'], 'split': ['holdout']}).to_csv(tmp_path/'s.csv', index=False)
    with pytest.raises(ValueError, match='split must be train, valid or test'): image_dataloaders(tmp_path/'s.csv')
    with pytest.raises(FileNotFoundError, match='No such manifest'): image_dataloaders(tmp_path/'nope.csv')

def test_test_folder_is_kept_aside_and_evaluated(tmp_path, tiny_demo):
    root = _folders(tmp_path/'data', tiny_demo, test=True)
    with pytest.warns(UserWarning, match='cannot check'): dls = image_dataloaders(root, size=32, bs=4)
    n_test = len(list((root/'test').rglob('*.png')))
    assert n_test > 0 and (dls.images.manifest.split == 'test').sum() == n_test
    assert len(dls.train_ds) + len(dls.valid_ds) == 24 - n_test
    out = tmp_path/'run'
    r = subprocess.run(['bcc-train', str(root), '--out', str(out), '--size', '32', '--bs', '4', '--epochs', '1', '--quiet'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(['bcc-evaluate', str(out), '--split', 'test'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((out/'test'/'metrics.json').read_text())
    assert m['split'] == 'test' and m['n_images'] == n_test

def test_formats_and_modes_are_converted(tmp_path, tiny_demo):
    root = _folders(tmp_path, tiny_demo)
    benign = sorted((root/'train'/'benign').glob('*.png'))
    rgb = np.asarray(Image.open(benign[0]))
    Image.open(benign[0]).convert('RGBA').save(root/'train'/'benign'/'rgba.png')
    Image.open(benign[0]).convert('L').save(root/'train'/'benign'/'grey.tif')
    Image.open(benign[0]).save(root/'train'/'benign'/'photo.jpg', quality=95)
    Image.fromarray((np.asarray(Image.open(benign[0]).convert('L')).astype(np.uint16) * 257)).save(root/'train'/'benign'/'deep.tiff')
    with pytest.warns(UserWarning, match=r'are not 8-bit RGB'): dls = image_dataloaders(root, size=32, bs=4)
    m = dls.images.manifest.set_index(dls.images.manifest.path.map(lambda p: p.rsplit('/', 1)[-1]))
    assert {'rgba.png': 'RGBA', 'grey.tif': 'L', 'photo.jpg': 'RGB'}.items() <= m['mode'].to_dict().items()
    assert m.loc['deep.tiff', 'mode'].startswith('I')
    from bcc_nb.data import HistoImage
    deep = np.asarray(HistoImage.create(root/'train'/'benign'/'deep.tiff'))
    grey = np.asarray(HistoImage.create(root/'train'/'benign'/'grey.tif'))
    assert deep.shape == rgb.shape and np.abs(deep.astype(int) - grey.astype(int)).max() <= 1  # scaled, not clipped
    for _ in dls.train: pass

def test_unrecognised_class_names_are_refused_and_mapped(tmp_path, tiny_demo):
    root = _folders(tmp_path, tiny_demo, names=('class_0', 'class_1'))
    with pytest.raises(ValueError, match=r"neither benign nor malignant: \['class_0', 'class_1'\].*--class-map"):
        image_dataloaders(root, size=32, bs=4)
    dls = image_dataloaders(root, size=32, bs=4, class_map={'class_0': 'benign', 'class_1': 'malignant'})
    assert dls.vocab == ['benign', 'malignant']
    with pytest.raises(ValueError, match=r"class_map does not say what \['class_1'\]"):
        image_dataloaders(root, class_map={'class_0': 'benign'})

def test_copies_across_splits(tmp_path, tiny_demo):
    root = _folders(tmp_path, tiny_demo)
    src = sorted((root/'train'/'malignant').glob('*.png'))[0]
    shutil.copy(src, root/'validation'/'malignant'/'renamed_copy.png')
    with pytest.warns(UserWarning, match=r'1 image\(s\) appear with the same bytes[\s\S]*renamed_copy.png \(valid\)'):
        image_dataloaders(root, size=32, bs=4)
    with pytest.raises(ValueError, match='renamed_copy.png'): image_dataloaders(root, strict=True)

def test_summary_counts(tiny_demo):
    dls = image_dataloaders(tiny_demo, size=32, bs=4)
    t = dls.images.tables()
    per = t['Images and patients per split and class']
    assert per.images.sum() == 24 and per.patients.sum() == 6
    assert t['Images per magnification'].to_numpy().sum() == 24
    assert list(t['Image sizes and modes'].reset_index().itertuples(index=False, name=None)) == [(175, 115, 'RGB', 24)]
    md = dls.images._repr_markdown_()
    assert '**24 images** (breakhis layout)' in md and '| split | label | images | patients |' in md
