"""The Corral image that `make image` builds, for the deployment tests.

Like every engine test, these skip on a developer's machine without it and FAIL
in CI, where `.ci/run` builds the image before `make test`.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from deploy_support import IMAGE, need


@pytest.fixture(scope="session")
def corral_image() -> str:
    present = shutil.which("docker") is not None and (
        subprocess.run(
            ["docker", "image", "inspect", IMAGE], capture_output=True, check=False, timeout=30
        ).returncode
        == 0
    )
    need(present, f"no {IMAGE} image: run `make image` (needs a Docker engine)")
    return IMAGE
