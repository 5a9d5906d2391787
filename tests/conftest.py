import os
from pathlib import Path
import pytest
from bcc_nb.demo import make_demo_data

# The shared real-data sample sits beside the checkout (../shared/data/breakhis-dev); BCC_BREAKHIS_DEV overrides it.
REAL_DATA = Path(os.environ.get('BCC_BREAKHIS_DEV', Path(__file__).resolve().parents[2]/'shared'/'data'/'breakhis-dev'))

@pytest.fixture(scope='session')
def tiny_demo(tmp_path_factory):
    "A small synthetic BreakHis-style set: 6 patients, 4 images each, half-size images."
    return make_demo_data(tmp_path_factory.mktemp('demo')/'data', n_patients=6, images_per_patient=4, size=(175, 115))

@pytest.fixture(scope='session')
def real_data():
    if not (REAL_DATA/'BreaKHis_v1').is_dir():
        pytest.skip(f"real BreakHis sample not found at {REAL_DATA} (set BCC_BREAKHIS_DEV to its folder)")
    return REAL_DATA

@pytest.fixture(scope='session', autouse=True)
def resized_cache(tmp_path_factory):
    "Resized copies made during the tests go to a temporary folder, never into the user's ~/.cache (CLI subprocesses inherit it)."
    d = tmp_path_factory.mktemp('resized_cache')
    old = os.environ.get('BCC_NB_CACHE')
    os.environ['BCC_NB_CACHE'] = str(d)
    yield d
    if old is None: os.environ.pop('BCC_NB_CACHE', None)
    else: os.environ['BCC_NB_CACHE'] = old
