"""Pictures from Python: heatmap and overlay as numpy uint8, the overlay
leaving the input visible where the attribution is near zero."""
import numpy as np
import torch

import mipin


def test_heatmap_and_overlay_are_uint8_pictures_and_saved(tmp_path):
    x = torch.linspace(0, 1, 28 * 28).reshape(1, 28, 28)
    a = torch.zeros(1, 28, 28)
    a[0, 10:14, 10:14] = 1.0
    heatmap, overlay = mipin.visualize(a, x, save=tmp_path / "example")
    assert heatmap.dtype == np.uint8 and overlay.dtype == np.uint8
    assert heatmap.shape == overlay.shape and heatmap.shape[2] == 3
    scale = heatmap.shape[0] // 28
    assert scale >= 1
    # Where the attribution is zero, the overlay is the input's grey.
    grey = overlay[0, 0]
    assert grey[0] == grey[1] == grey[2]
    # Where it is largest, the overlay is red.
    r, g, b = overlay[12 * scale, 12 * scale].astype(int)
    assert r > g + 100 and r > b + 100
    assert (tmp_path / "example_heatmap.png").stat().st_size > 0
    assert (tmp_path / "example_overlay.png").stat().st_size > 0
