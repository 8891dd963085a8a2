"""setup.cfg ships every module of the repository: a plain `pip install .` (not editable) installs the listed modules
only, and the listed ones import the others (fast_decoder.py imports weight_quantization.py, convert_easy_vqa.py
draw_shapes.py)."""

import configparser

from conftest import REPO_ROOT


def test_every_top_level_module_is_in_py_modules():
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    listed = config["options"]["py_modules"].split()
    assert listed == sorted(listed), "keep py_modules sorted"
    assert set(listed) == {path.stem for path in REPO_ROOT.glob("*.py")}
