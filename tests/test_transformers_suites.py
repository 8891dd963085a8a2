"""transformers' own common processor tests, from the source distribution of the installed transformers version
(fetched from the package registry at test time, never copied into this repository), run against our processor.

The mixin's tests that need the Hub fetch images through `utils/fetch_hub_objects_for_ci.py`, which the source
distribution does not ship: a stand-in maps image URLs to a bundled example image. Tests that do not apply are listed
with their reasons in INAPPLICABLE."""

import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import transformers

from conftest import REPO_ROOT

# Each test of the mixin that does not apply to NextGPTProcessor, and why (processing_suite.py skips them).
INAPPLICABLE = {
    "test_flat_kwarg_applied_when_modality_dict_lacks_it": "passes videos= and audio= to an image-only processor and "
    "expects them ignored; NextGPTProcessor refuses them with a clear error instead of dropping them silently",
    "test_model_input_names": "same: passes videos= and audio=, which this processor refuses",
}
FETCH_STAND_IN = f'''
def url_to_local_path(url, *args, **kwargs):
    """The Hub is unreachable here: image URLs become a bundled example image; other URLs stay as they are."""
    image = url.lower().endswith((".png", ".jpg", ".jpeg"))
    return {str(REPO_ROOT / "examples" / "red_triangle.png")!r} if image else url
'''


@pytest.fixture(scope="session")
def transformers_tests(tmp_path_factory):
    folder = tmp_path_factory.mktemp("transformers_sdist")
    version = transformers.__version__
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                              f"transformers=={version}", "-d", str(folder)], capture_output=True, text=True,
                             timeout=600)
    archives = list(folder.glob("transformers-*.tar.gz"))
    if fetched.returncode != 0 or not archives:
        pytest.skip(f"the transformers {version} source distribution could not be fetched: "
                    f"{(fetched.stderr.strip().splitlines() or ['no archive'])[-1]}")
    with tarfile.open(archives[0]) as archive:
        member = archive.getmember(f"transformers-{version}/tests/test_processing_common.py")
        member.name = "tests/test_processing_common.py"
        archive.extract(member, folder, filter="data")
    (folder / "utils").mkdir()
    (folder / "utils" / "fetch_hub_objects_for_ci.py").write_text(FETCH_STAND_IN)
    return folder / "tests"


def test_transformers_processor_tester_mixin_passes(transformers_tests):
    shutil.copy(REPO_ROOT / "tests" / "processing_suite.py", transformers_tests / "test_nextgpt_processing.py")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "test_nextgpt_processing.py"],
        cwd=transformers_tests, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1",
             "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'tests'}:{transformers_tests}"})
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    skipped_inapplicable = sum(reason in result.stdout for reason in INAPPLICABLE.values())
    assert passed >= 33 and skipped_inapplicable == len(INAPPLICABLE), summary
