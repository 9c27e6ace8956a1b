"""ultralytics made offline and quiet by ``experiments.tasks.detect.env`` (and the test's own network guard)."""
import urllib.request

import pytest

from experiments.tasks.detect import env  # noqa: F401  (before ultralytics: it sets ultralytics' settings dir)
from tests.experiments.tasks.detect.helpers import no_network


def test_network_guard_blocks():
    with no_network() as attempts:
        with pytest.raises(OSError):
            urllib.request.urlopen("http://example.com", timeout=2)
    assert attempts


def test_pil_open_is_pillows_own():
    from PIL import Image
    from ultralytics.utils import patches
    assert Image.open is patches._image_open  # ultralytics' HEIF patch would pip-install on a broken image
